@testable import Executor
import IR
import XCTest

/// Hands out the chunks of an array, as a load would.
final class ArrayChunkKernel: ChunkKernel {
    let values: [Float]

    init(_ values: [Float]) { self.values = values }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        values.withUnsafeBufferPointer { v in
            out.update(from: v.baseAddress! + operands.range.lowerBound, count: operands.range.count)
        }
    }
}

/// Runs `op`'s streaming kernel on array operands of `shape`, `chunkRows` slices along dimension 0 at a time
/// (nil: the whole tensor in one chunk), as the executor does: as many statistics sweeps as the kernel's
/// declared cost, then the output sweep. With `holding` (for a kernel that offers it, `KernelCost.holding`), the
/// kernel holds its operands as the planner may grant: the sweeps after its operand passes compute none.
func runChunked(_ op: Op, _ operands: [[Float]], shape: [Int], dtype: DType = .f32, threads: Int = 1,
                chunkRows: Int? = nil, memory: MemoryAccount = MemoryAccount(),
                operandDType: DType = .f32, holding: Bool = false) throws -> [Float] {
    var context = KernelContext(shape: shape, dtype: dtype, parallel: Parallel(threads: threads), memory: memory,
                                operandDTypes: operands.map { _ in operandDType })
    let declaration = declaration(op, operands: operands.count, shape: shape, dtype: dtype, threads: threads,
                                  operandDType: operandDType)
    let held = holding ? declaration.cost.holdingOperands() : nil
    XCTAssertEqual(held == nil, !holding, "\(op.mnemonic) offers no holding")
    context.holdsOperands = held != nil
    return try runChunked(declaration.make!(context), operands, shape: shape, passes: declaration.cost.passes,
                          chunkRows: chunkRows, memory: memory, operandPasses: held?.operandPasses)
}

/// The kernel declaration of `op` over `operands` tensors of `shape`.
func declaration(_ op: Op, operands: Int, shape: [Int], dtype: DType = .f32, threads: Int,
                 operandDType: DType = .f32) -> KernelDeclaration {
    KernelFactory.declaration(for: op, result: TensorType(dtype: dtype, shape: shape),
                              operands: Array(repeating: TensorType(dtype: operandDType, shape: shape), count: operands),
                              threads: threads)
}

/// Runs `kernel` on array operands of `shape`, `chunkRows` slices along dimension 0 at a time, after `passes`
/// statistics sweeps.
/// statistics sweeps; with `operandPasses`, a kernel holding its operands that reads them in its first
/// `operandPasses` passes only.
func runChunked(_ kernel: ChunkKernel, _ operands: [[Float]], shape: [Int], passes: Int, chunkRows: Int? = nil,
                memory: MemoryAccount = MemoryAccount(), operandPasses: Int? = nil) throws -> [Float] {
    let count = shape.reduce(1, *)
    let rowElements = shape.count >= 2 ? count / shape[0] : count
    var entries = operands.map { ChunkRunner.Entry(kernel: ArrayChunkKernel($0), operands: [], frees: []) }
    let k = entries.count
    entries.append(ChunkRunner.Entry(kernel: kernel, operands: Array(operands.indices), frees: Array(0...k)))
    let reads = operandPasses ?? (passes + 1)
    let sweeps = (0..<passes).map { Sweep(observers: [k], computes: $0 < reads ? Array(operands.indices) : []) }
        + [Sweep(observers: [], computes: passes < reads ? Array(0...k) : [k])]
    let runner = ChunkRunner(entries: entries, sweeps: sweeps, elementCount: count,
                             chunkElements: chunkRows.map { $0 * rowElements } ?? count, memory: memory,
                             holding: operandPasses == nil ? [] : [k])
    var result = [Float](repeating: .nan, count: count)
    try runner.run(outputs: [k]) { _, range, values throws(ExecutionError) in
        for i in range { result[i] = values[i - range.lowerBound] }
    }
    return result
}

/// Asserts `op` gives the same bits for one row per chunk, a few rows, the whole tensor, and 1, 2 or 3 threads.
/// With `holding`, also with the kernel holding its operands (`runChunked`'s `holding`).
func assertChunkInvariant(_ op: Op, _ operands: [[Float]], shape: [Int], dtype: DType = .f32, holding: Bool = false,
                          file: StaticString = #filePath, line: UInt = #line) throws {
    let reference = try runChunked(op, operands, shape: shape, dtype: dtype).map(\.bitPattern)
    let rows = shape.count >= 2 ? shape[0] : 1
    for held in holding ? [false, true] : [false] {
        for (chunkRows, threads) in [(1, 1), (3, 2), (max(1, rows / 2), 3), (rows, 2)] {
            let bits = try runChunked(op, operands, shape: shape, dtype: dtype, threads: threads, chunkRows: chunkRows,
                                      operandDType: held ? dtype : .f32, holding: held).map(\.bitPattern)
            XCTAssertTrue(bits == reference,
                          "\(op.mnemonic): \(chunkRows) rows per chunk, \(threads) threads\(held ? ", holding" : "") differ",
                          file: file, line: line)
        }
    }
}

/// Deterministic pseudo-random values in [-1, 1] with exact ties (multiples of 1/1000).
func pseudoRandom(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
    }
}

/// The per-element population variances of `operands` (a `variance` node, f32), which `variance_topk` selects from.
func variances(_ operands: [[Float]], shape: [Int]) throws -> [Float] {
    try runChunked(.variance, operands, shape: shape)
}

/// Runs `op`'s kernel over `values` (bf16 merge on two threads): its statistics passes, then its output sweep,
/// `chunkRows` rows at a time, with the operands in `packed` handed over as `planes` (their bf16 patterns) and the
/// rest as values, in each pass and sweep where the kernel reads planes (`readsBF16Planes`, asked after `beginPass`,
/// as `ChunkRunner` asks), else all as values; `handed` counts the passes and sweeps that took planes.
func runWithPlanes(_ op: Op, _ values: [[Float]], planes: [[UInt16]], packed: Set<Int>, shape: [Int], chunkRows: Int,
                   handed: inout Int) throws -> [Float] {
    let n = shape.reduce(1, *), rowLength = n / shape[0]
    let context = KernelContext(shape: shape, dtype: .bf16, parallel: Parallel(threads: 2), memory: MemoryAccount(),
                                operandDTypes: values.map { _ in .bf16 })
    let kernel = declaration(op, operands: values.count, shape: shape, dtype: .bf16, threads: 2,
                             operandDType: .bf16).make!(context)
    var out = [Float](repeating: .nan, count: n)
    var taken = 0
    try values.withPointers { floats in
        try planes.withPointers { halves in
            func chunks(_ body: (ChunkOperands) throws -> Void) throws {
                let handing = kernel.readsBF16Planes && !packed.isEmpty
                if handing { taken += 1 }
                var start = 0
                while start < n {
                    let range = start..<min(n, start + chunkRows * rowLength)
                    var operands = ChunkOperands(pointers: floats.map { $0 + range.lowerBound }, range: range)
                    if handing {
                        operands.planes = halves.indices.map { packed.contains($0) ? halves[$0] : nil }
                    }
                    try body(operands)
                    start = range.upperBound
                }
            }
            while kernel.beginPass() {
                try chunks { try kernel.observe($0) }
                kernel.finishPass()?.run()
                try kernel.endPass()
            }
            kernel.beginSweep()
            try out.withUnsafeMutableBufferPointer { o in
                try chunks { try kernel.produce($0, into: o.baseAddress! + $0.range.lowerBound) }
            }
        }
    }
    handed += taken
    return out
}

extension Array {
    /// Calls `body` with a stable base address of each inner array.
    func withPointers<T, R>(_ body: ([UnsafePointer<T>]) throws -> R) rethrows -> R where Element == [T] {
        var pointers: [UnsafePointer<T>] = []
        func nest(_ k: Int) throws -> R {
            if k == count { return try body(pointers) }
            return try self[k].withUnsafeBufferPointer { buffer in
                pointers.append(buffer.baseAddress!)
                defer { pointers.removeLast() }
                return try nest(k + 1)
            }
        }
        return try nest(0)
    }
}
