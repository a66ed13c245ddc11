@testable import Executor
import IR
import XCTest

/// The whole-tensor kernels give the same bytes for any chunking and thread count (tensors span several blocks).
final class KernelDeterminismTests: XCTestCase {
    /// 1601 rows of 123: more than three blocks, with a partial last block.
    static let count = 123 * 1601

    /// The selection kernels give the same bytes for any chunking and thread count.
    func testSelectionKernelsAreChunkInvariant() throws {
        let shape = [1601, 123]
        let xs = (1...3).map { pseudoRandom(Self.count, seed: UInt64($0)) }
        try assertChunkInvariant(.varianceTopK(fraction: 0.3), [variances(xs, shape: shape)], shape: shape)
        try assertChunkInvariant(.arceeFusion, [xs[0], xs[1]], shape: shape)
    }

    /// The spherical and Gram-based kernels give the same bytes for any chunking and thread count.
    func testSphericalKernelsAreChunkInvariant() throws {
        let shape = [1601, 123]
        let xs = (1...4).map { pseudoRandom(Self.count, seed: UInt64($0)) }
        try assertChunkInvariant(.slerp(t: 0.3), [xs[0], xs[1]], shape: shape)
        try assertChunkInvariant(.slerp(t: 0.7), [xs[0], xs[1]], shape: shape, dtype: .bf16)
        for axis in [SlerpAxis.flattened, .lastDim, .firstDim] {
            try assertChunkInvariant(.nuslerp(t: 0.3, axis: axis), [xs[0], xs[1]], shape: shape)
            try assertChunkInvariant(.nuslerp(t: 0.6, axis: axis), [xs[2], xs[3]], shape: shape, dtype: .bf16)
        }
        try assertChunkInvariant(.multislerp(weights: [0.5, 0.3, 0.2], eps: 1e-8), Array(xs[0..<3]), shape: shape)
        try assertChunkInvariant(.karcher(maxIter: 10, tol: 1e-5), Array(xs[0..<3]), shape: shape, dtype: .bf16)
        try assertChunkInvariant(.modelStock(filterWise: false), xs, shape: shape)
        try assertChunkInvariant(.modelStock(filterWise: true), xs, shape: shape, dtype: .bf16)
    }

    /// Vectors along the first or last of three dimensions: columns are every position of the trailing two.
    func testSphericalKernelsAreChunkInvariantInThreeDimensions() throws {
        let shape = [9, 4, 7]
        let xs = (1...3).map { pseudoRandom(9 * 4 * 7, seed: UInt64($0)) }
        for axis in [SlerpAxis.lastDim, .firstDim] {
            try assertChunkInvariant(.nuslerp(t: 0.4, axis: axis), [xs[0], xs[1]], shape: shape, dtype: .f16)
        }
        try assertChunkInvariant(.modelStock(filterWise: true), xs, shape: shape)
    }
}
