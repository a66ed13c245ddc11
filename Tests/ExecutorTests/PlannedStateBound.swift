@testable import Executor
import IR
import Planner
import XCTest

/// Asserts that running `op` on `operands` pseudo-random tensors of `shape`, `chunkRows` slices per chunk, holds
/// at most the planner's state bound (`Op.streamingStateBytes`) beyond its chunk buffers, for 1, 2 and 3 threads.
func assertStateWithinPlannedBound(_ op: Op, operands: Int, shape: [Int], chunkRows: Int,
                                   file: StaticString = #filePath, line: UInt = #line) throws {
    let n = shape.reduce(1, *)
    let rowElements = shape.count >= 2 ? n / shape[0] : n
    let xs = (0..<operands).map { pseudoRandom(n, seed: UInt64($0 + 1)) }
    // One chunk buffer per operand and one for the output.
    let buffers = (operands + 1) * min(n, chunkRows * rowElements) * 4
    for threads in [1, 2, 3] {
        let memory = MemoryAccount()
        _ = try runChunked(op, xs, shape: shape, threads: threads, chunkRows: chunkRows, memory: memory)
        let bound = op.streamingStateBytes(shape: shape, operands: operands, threads: threads) + buffers
        XCTAssertLessThanOrEqual(memory.peakBytes, bound, "\(op.mnemonic) \(shape), \(threads) threads",
                                 file: file, line: line)
    }
}
