@testable import Executor
import Checkpoint
import IR
import XCTest

/// Asserts that running `op` on `operands` pseudo-random tensors of `shape`, `chunkRows` slices per chunk, on 1, 2
/// and 3 threads, holds exactly what the kernel's declared cost says at its peak: in each phase its state for that
/// phase (and its finishing bytes while a pass finishes) plus the chunk buffers alive (the operands during a pass;
/// the operands and the output in the sweep).
/// With `exact` false (data that leave some declared state unused), at most that.
/// With `holding`, the kernel holds its operands (`runChunked`'s `holding`) and its declared holding cost is the
/// one checked; the chunk buffers of the operand passes stay in the pool through the later phases.
func assertStateMatchesDeclaredCost(_ op: Op, operands: Int, shape: [Int], chunkRows: Int, exact: Bool = true,
                                    dtype: DType = .f32, holding: Bool = false,
                                    file: StaticString = #filePath, line: UInt = #line) throws {
    let n = shape.reduce(1, *)
    let rowElements = shape.count >= 2 ? n / shape[0] : n
    let xs = (0..<operands).map { pseudoRandom(n, seed: UInt64($0 + 1)).map { DTypeConversion.round($0, to: dtype) } }
    let chunk = min(n, chunkRows * rowElements) * 4
    for threads in [1, 2, 3] {
        let memory = MemoryAccount()
        _ = try runChunked(op, xs, shape: shape, dtype: dtype, threads: threads, chunkRows: chunkRows, memory: memory,
                           operandDType: dtype, holding: holding)
        let declared = declaration(op, operands: operands, shape: shape, dtype: dtype, threads: threads,
                                   operandDType: dtype).cost
        let cost = holding ? try XCTUnwrap(declared.holdingOperands()) : declared
        var expected = cost.sweepBytes + (operands + 1) * chunk
        // A pass holds its bytes, and while it finishes its finishing bytes too (which the runner reserves).
        let passes = cost.passBytes.indices.map { cost.passBytes[$0] + cost.finishBytes(pass: $0) }
        if holding {
            expected = max(cost.initialBytes, (passes + [cost.sweepBytes]).max()! + operands * chunk)
        } else if cost.passes > 0 {
            expected = max(expected, cost.initialBytes, passes.map { $0 + operands * chunk }.max()!)
        }
        if exact {
            XCTAssertEqual(memory.peakBytes, expected, "\(op.mnemonic) \(dtype) \(shape), \(threads) threads",
                           file: file, line: line)
        } else {
            XCTAssertLessThanOrEqual(memory.peakBytes, expected, "\(op.mnemonic) \(dtype) \(shape), \(threads) threads",
                                     file: file, line: line)
        }
    }
}
