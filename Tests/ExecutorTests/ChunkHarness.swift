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
