@testable import Executor
import IR
import XCTest

/// The spherical, Gram-based and SCE kernels hold exactly the memory their declared costs say.
final class DeclaredCostTests: XCTestCase {
    func testStateMatchesTheDeclaredCost() throws {
        for shape in [[1601, 123], [9, 4, 7]] {
            try assertStateMatchesDeclaredCost(.slerp(t: 0.5), operands: 2, shape: shape, chunkRows: 3)
            for axis in [SlerpAxis.flattened, .lastDim, .firstDim] {
                try assertStateMatchesDeclaredCost(.nuslerp(t: 0.5, axis: axis), operands: 2, shape: shape, chunkRows: 3)
            }
            try assertStateMatchesDeclaredCost(.modelStock(filterWise: false), operands: 4, shape: shape, chunkRows: 3)
            try assertStateMatchesDeclaredCost(.modelStock(filterWise: true), operands: 4, shape: shape, chunkRows: 3)
            try assertStateMatchesDeclaredCost(.multislerp(weights: [0.5, 0.3, 0.2], eps: 1e-8), operands: 3, shape: shape,
                                               chunkRows: 3)
            try assertStateMatchesDeclaredCost(.karcher(maxIter: 10, tol: 1e-5), operands: 3, shape: shape, chunkRows: 3)
        }
    }

    /// The half-precision kernels (PyTorch-order reductions fed from tiles) hold what they declare too.
    func testHalfPrecisionStateMatchesTheDeclaredCost() throws {
        for shape in [[1601, 123], [9, 4, 7]] {
            for dtype in [DType.bf16, .f16] {
                for axis in [SlerpAxis.flattened, .lastDim, .firstDim] {
                    try assertStateMatchesDeclaredCost(.nuslerp(t: 0.5, axis: axis), operands: 2, shape: shape,
                                                       chunkRows: 3, dtype: dtype)
                }
                try assertStateMatchesDeclaredCost(.multislerp(weights: [0.5, 0.3, 0.2], eps: 1e-8), operands: 3,
                                                   shape: shape, chunkRows: 3, dtype: dtype)
                try assertStateMatchesDeclaredCost(.multislerp(weights: [0.5, 0.3, 0.2], eps: 1e-8), operands: 3,
                                                   shape: shape, chunkRows: 3, dtype: dtype, holding: true)
                try assertStateMatchesDeclaredCost(.modelStock(filterWise: false), operands: 4, shape: shape,
                                                   chunkRows: 3, dtype: dtype)
                try assertStateMatchesDeclaredCost(.sceMerge, operands: 3, shape: shape, chunkRows: 3, dtype: dtype)
            }
        }
    }
}
