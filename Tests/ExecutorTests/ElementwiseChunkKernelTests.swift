@testable import Executor
import Checkpoint
import IR
import XCTest

/// The per-element kernels: hand-computed values, dtype rounding, and the same bits for any chunking.
final class ElementwiseChunkKernelTests: XCTestCase {
    func testArithmetic() throws {
        let a: [Float] = [1, -2, 0.5, 3], b: [Float] = [0.25, 2, -0.5, 1]
        XCTAssertEqual(try runChunked(.sub, [a, b], shape: [4]), [0.75, -4, 1, 2])
        XCTAssertEqual(try runChunked(.add, [a, b], shape: [4]), [1.25, 0, 0, 4])
        XCTAssertEqual(try runChunked(.mul, [a, b], shape: [4]), [0.25, -4, -0.25, 3])
        XCTAssertEqual(try runChunked(.scale(2), [a], shape: [4]), [2, -4, 1, 6])
        XCTAssertEqual(try runChunked(.weightedSum([0.5, 2]), [a, b], shape: [4]), [1, 3, -0.75, 3.5])
        // Four operands take the one-and-three path of the f64 accumulator.
        XCTAssertEqual(try runChunked(.weightedSum([1, 1, 1, 1]), [a, b, a, b], shape: [2, 2]), [2.5, 0, 0, 8])
    }

    func testResultsAreRoundedToTheNodeDType() throws {
        let x: [Float] = [1 + 0x1p-9, 1 + 0x1p-7, 1 + 3 * 0x1p-9, .nan]
        let bf16 = try runChunked(.cast(.bf16), [x], shape: [4], dtype: .bf16)
        XCTAssertEqual(Array(bf16.prefix(3)), [1, 1 + 0x1p-7, 1 + 0x1p-7], "ties to even")
        XCTAssertTrue(bf16[3].isNaN)
        XCTAssertEqual(try runChunked(.cast(.f16), [[65520, 1e-8]], shape: [2], dtype: .f16), [.infinity, 0])
    }

    /// `sub`, `add` and `mul` on bf16/f16 nodes round in their own loop: each element equals the f32 result rounded
    /// to the dtype (`DTypeConversion.round`), ties to even, NaN, infinities, overflow and subnormals included, for
    /// lengths that are not multiples of the eight lanes, on two threads and chunk by chunk.
    func testHalfPrecisionPairOpsRoundEachElement() throws {
        let special: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 3e38, -3e38,
                                0x1p-130, 65504, 65520, 1e-8, 2.5e-5]
        let count = 1001
        let a = special + pseudoRandom(count - special.count, seed: 21)
        let b = special.reversed() + pseudoRandom(count - special.count, seed: 22).map { $0 * 3 }
        for dtype in [DType.bf16, .f16] {
            for (op, f) in [(Op.sub, { (x: Float, y: Float) in x - y }), (.add, { $0 + $1 }), (.mul, { $0 * $1 })] {
                let expected = zip(a, b).map { DTypeConversion.round(f($0, $1), to: dtype).bitPattern }
                for (threads, rows) in [(1, nil), (2, 7)] as [(Int, Int?)] {
                    let actual = try runChunked(op, [a, b], shape: [143, 7], dtype: dtype, threads: threads, chunkRows: rows)
                    XCTAssertEqual(actual.map(\.bitPattern), expected, "\(op) \(dtype), \(threads) thread(s)")
                }
            }
        }
    }

    func testSignConsensus() throws {
        let t1: [Float] = [1, -1, 0.5, 0], t2: [Float] = [-2, -1, 1, 0]
        let sign = try runChunked(.signElect(weights: [1, 1]), [t1, t2], shape: [4])
        XCTAssertEqual(sign, [-1, -1, 1, 1], "a zero sum elects +1")
        let merged = try runChunked(.disjointMerge(weights: [1, 1], normalize: true, lambda: 2), [sign, t1, t2], shape: [4])
        XCTAssertEqual(merged, [-4, -2, 1.5, 0], "only agreeing entries, divided by their weights, times lambda")
        let unnormalized = try runChunked(.disjointMerge(weights: [0.5, 1], normalize: false, lambda: 1),
                                          [sign, t1, t2], shape: [4])
        XCTAssertEqual(unnormalized, [-2, -1.5, 1.25, 0])
    }

    /// Election and merge in one kernel give the bytes of the two steps (nodes of the same dtype, as lowered: on
    /// bf16 the election sums the bf16-rounded weighted task vectors).
    func testFusedElectionAndMergeEqualTheTwoSteps() throws {
        let shape = [1601, 123]
        let tvs = (1...3).map { pseudoRandom(1601 * 123, seed: UInt64($0 + 10)).map { $0 > 0.3 || $0 < -0.3 ? $0 : 0 } }
        let e = [0.4, 0.3, 0.3], w = [0.5, 0.2, 0.3]
        let sign = try runChunked(.signElect(weights: e), tvs, shape: shape, dtype: .bf16)
        for (normalize, lambda) in [(true, 1.0), (false, 0.7)] {
            let twoSteps = try runChunked(.disjointMerge(weights: w, normalize: normalize, lambda: lambda), [sign] + tvs,
                                          shape: shape, dtype: .bf16, threads: 2, chunkRows: 9)
            let oneStep = try runChunked(.tiesMerge(electWeights: e, weights: w, normalize: normalize, lambda: lambda),
                                         tvs, shape: shape, dtype: .bf16, threads: 2, chunkRows: 5)
            XCTAssertEqual(oneStep.map(\.bitPattern), twoSteps.map(\.bitPattern))
        }
    }

    func testElementwiseKernelsAreChunkInvariant() throws {
        let xs = (1...4).map { pseudoRandom(1601 * 123, seed: UInt64($0)) }
        let shape = [1601, 123]
        try assertChunkInvariant(.weightedSum([0.4, 0.3, 0.2, 0.1]), xs, shape: shape, dtype: .bf16)
        try assertChunkInvariant(.sub, Array(xs.prefix(2)), shape: shape, dtype: .f16)
        try assertChunkInvariant(.signElect(weights: [0.5, 0.3, 0.2]), Array(xs.prefix(3)), shape: shape)
        try assertChunkInvariant(.disjointMerge(weights: [0.5, 0.3, 0.2], normalize: true, lambda: 1), xs,
                                 shape: shape, dtype: .bf16)
        try assertChunkInvariant(.nearSwap(t: 0.1), Array(xs.prefix(2)), shape: shape, dtype: .bf16)
    }
}
