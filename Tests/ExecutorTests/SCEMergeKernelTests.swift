@testable import Executor
import IR
import XCTest

/// SCE's final mix (`sce_merge`): mean-square weights over the whole tensor, agreeing signs only.
final class SCEMergeKernelTests: XCTestCase {
    func testSCEMergeWeighsByMeanSquareAmongAgreeingSigns() throws {
        let tv1: [Float] = [2, -1], tv2: [Float] = [1, 1]
        // Mean squares 2.5 and 1.
        XCTAssertEqual(SCEMergeChunkKernel.weights(squaredNorms: [5, 2], count: 2), [2.5 / 3.5, 1 / 3.5])
        let out = try runChunked(.sceMerge, [[1, -1], tv1, tv2], shape: [2])
        XCTAssertEqual(out[0], 12.0 / 7, accuracy: 1e-6)
        XCTAssertEqual(out[1], -1, accuracy: 1e-6)
    }

    func testSCEWeightsAreEqualWhenTheTaskVectorsVanish() throws {
        // Mean squares 0 and 0.5e-8: the total is below 1e-6.
        XCTAssertEqual(SCEMergeChunkKernel.weights(squaredNorms: [0, 1e-8], count: 2), [0.5, 0.5])
        let out = try runChunked(.sceMerge, [[1, 1], [0, 0], [0, 0]], shape: [2])
        XCTAssertEqual(out, [0, 0], "no agreeing input: 0 / max(0, 1e-6)")
    }

    /// A NaN or infinite task-vector value makes a weight NaN (NaN, or ∞/∞), and the whole result NaN as in
    /// mergekit (whose erased weights are NaN · 0 = NaN even where no sign agrees), in f32 and bf16, by chunks.
    func testANonFiniteTaskVectorMakesTheWholeResultNaN() throws {
        let sign: [Float] = [1, -1, 1, 1, -1, 1]
        for bad in [Float.nan, .infinity] {
            let tv1: [Float] = [1, -1, 0, 2, -3, bad], tv2: [Float] = [1, 1, 0, 0, -1, 2]
            XCTAssertTrue(SCEMergeChunkKernel.weights(squaredNorms: [tv1.reduce(0) { $0 + Double($1 * $1) }, 7],
                                                      count: 6).contains(where: \.isNaN))
            for dtype in [DType.f32, .bf16] {
                let out = try runChunked(.sceMerge, [sign, tv1, tv2], shape: [3, 2], dtype: dtype, chunkRows: 1)
                XCTAssertTrue(out.allSatisfy(\.isNaN), "\(bad) \(dtype): \(out)")
            }
        }
        // Finite task vectors give finite results.
        XCTAssertFalse(try runChunked(.sceMerge, [sign, [1, -1, 0, 2, -3, 4], [1, 1, 0, 0, -1, 2]], shape: [3, 2])
            .contains(where: \.isNaN))
    }

    /// The weights come from the whole tensor, not from a chunk: one task vector is large only in the last row.
    func testWeightsSpanTheWholeTensor() throws {
        let sign = [Float](repeating: 1, count: 6)
        let tv1: [Float] = [1, 1, 1, 1, 1, 1], tv2: [Float] = [1, 1, 1, 1, 3, 3]
        // Mean squares 1 and 22/6: weights 6/28 and 22/28; row 0 mixes 1 and 1, row 2 mixes 1 and 3.
        let out = try runChunked(.sceMerge, [sign, tv1, tv2], shape: [3, 2], chunkRows: 1)
        let expected = [Float](repeating: 1, count: 4) + [Float((6.0 + 66) / 28), Float((6.0 + 66) / 28)]
        for (a, e) in zip(out, expected) { XCTAssertEqual(a, e, accuracy: 1e-6) }
    }

    /// The same bytes for any chunking and thread count (several blocks, a partial last one), f32 and bf16.
    func testSCEMergeIsChunkInvariant() throws {
        let shape = [1601, 123]
        let tvs = (1...3).map { pseudoRandom(1601 * 123, seed: UInt64($0)) }
        let sign = zip(tvs[0], tvs[1]).map { $0 + $1 >= 0 ? Float(1) : -1 }
        try assertChunkInvariant(.sceMerge, [sign] + tvs, shape: shape)
        try assertChunkInvariant(.sceMerge, [sign] + tvs, shape: shape, dtype: .bf16)
    }

    /// The kernel's state (one sum per task vector and block) stays within the planner's bound of it.
    func testStateStaysWithinThePlannedBound() throws {
        try assertStateMatchesDeclaredCost(.sceMerge, operands: 4, shape: [1601, 123], chunkRows: 100)
    }
}
