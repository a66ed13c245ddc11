@testable import Executor
import IR
import Planner
import XCTest

/// The spherical and Gram-based kernels hold no more accounted memory than the planner's bound predicts.
final class SphericalStateBytesTests: XCTestCase {
    /// Peak accounted bytes of a chunked run, at most the operand and output chunk buffers plus the state bound.
    func assertWithinBound(_ op: Op, operands: Int, shape: [Int], chunkRows: Int,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let count = shape.reduce(1, *)
        let xs = (0..<operands).map { pseudoRandom(count, seed: UInt64($0 + 1)) }
        let memory = MemoryAccount()
        _ = try runChunked(op, xs, shape: shape, threads: 2, chunkRows: chunkRows, memory: memory)
        let chunkBytes = chunkRows * (count / shape[0]) * 4
        let bound = (operands + 1) * chunkBytes + op.streamingStateBytes(shape: shape, operands: operands, threads: 2)
        XCTAssertLessThanOrEqual(memory.peakBytes, bound, "\(op)", file: file, line: line)
    }

    func testStateStaysWithinThePlannersBound() throws {
        for shape in [[1601, 123], [9, 4, 7]] {
            try assertWithinBound(.slerp(t: 0.5), operands: 2, shape: shape, chunkRows: 3)
            for axis in [SlerpAxis.flattened, .lastDim, .firstDim] {
                try assertWithinBound(.nuslerp(t: 0.5, axis: axis), operands: 2, shape: shape, chunkRows: 3)
            }
            try assertWithinBound(.modelStock(filterWise: false), operands: 4, shape: shape, chunkRows: 3)
            try assertWithinBound(.modelStock(filterWise: true), operands: 4, shape: shape, chunkRows: 3)
            try assertWithinBound(.multislerp(weights: [0.5, 0.3, 0.2], eps: 1e-8), operands: 3, shape: shape,
                                  chunkRows: 3)
            try assertWithinBound(.karcher(maxIter: 10, tol: 1e-5), operands: 3, shape: shape, chunkRows: 3)
        }
    }
}
