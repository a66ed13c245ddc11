@testable import Executor
import Checkpoint
import IR
import XCTest

/// Magnitude pruning (TIES, breadcrumbs): exact ranks by |x| with ties broken by index, keep ranges, rescaling.
final class MagnitudePruneKernelTests: XCTestCase {
    /// Sorts by (|x|, index), keeps ranks `keep`, rescales with block-ordered f64 L1 sums as the kernel does.
    func reference(_ x: [Float], keep: Range<Int>, rescale: Bool) -> [Float] {
        let n = x.count
        let lo = max(0, keep.lowerBound), hi = min(n, keep.upperBound)
        var out = [Float](repeating: 0, count: n)
        guard lo < hi else { return out }
        let order = (0..<n).sorted { (MagnitudeRank.key(x[$0]), $0) < (MagnitudeRank.key(x[$1]), $1) }
        for i in order[lo..<hi] { out[i] = x[i] }
        guard rescale else { return out }
        func l1(_ v: [Float]) -> Double {
            stride(from: 0, to: n, by: Parallel.blockSize).reduce(0.0) { total, start in
                total + v[start..<min(n, start + Parallel.blockSize)].reduce(0.0) { $0 + Double(abs($1)) }
            }
        }
        let (all, kept) = (l1(x), l1(out))
        guard all >= 1e-7, kept >= 1e-7 else { return out }
        let factor = Float(all / kept)
        return out.map { $0 * factor }
    }

    func prune(_ x: [Float], _ keep: Range<Int>, rescale: Bool = false, shape: [Int]? = nil, threads: Int = 1,
               chunkRows: Int? = nil) throws -> [Float] {
        try runChunked(.magnitudePrune(keep: keep, rescale: rescale, ties: .index), [x], shape: shape ?? [x.count],
                       threads: threads, chunkRows: chunkRows)
    }

    /// Ascending by |x|: 8 (0); 1, 2, 4, 5, 7 (1); 3, 6, 9 (2); 0 (3). Ranks 3..<8 skip the first two 1s and
    /// keep the first two 2s, in index order, however the rows are chunked.
    func testTiesAtBothBoundariesGoByIndex() throws {
        let x: [Float] = [3, -1, 1, 2, -1, 1, 2, 1, 0, -2]
        let expected: [Float] = [0, 0, 0, 2, -1, 1, 2, 1, 0, 0]
        XCTAssertEqual(try prune(x, 3..<8), expected)
        for (chunkRows, threads) in [(1, 1), (3, 2), (10, 3)] {
            XCTAssertEqual(try prune(x, 3..<8, shape: [10, 1], threads: threads, chunkRows: chunkRows), expected)
        }
        // Both boundaries inside the run of 1s: ranks 2..<4 are the second and third 1.
        XCTAssertEqual(try prune(x, 2..<4, shape: [10, 1], chunkRows: 1), [0, 0, 1, 0, -1, 0, 0, 0, 0, 0])
    }

    /// Bottom, top, empty, full, clamped and single-tie-run ranges on a tensor of few distinct magnitudes, with
    /// and without rescaling, for several chunkings.
    func testKeepRangesMatchASort() throws {
        let levels: [Float] = [0, 0.25, -0.25, 0.5, -0.5, 1, -1, 0.5]
        let x = pseudoRandom(120, seed: 5).map { levels[Int(($0 + 1) * 1000) % levels.count] }
        let n = x.count
        let ranges = [0..<10, 10..<n, n - 1..<n, 0..<1, 7..<7, 0..<0, n..<n, 0..<n, -3..<(n + 5), 40..<47, 33..<90]
        for keep in ranges {
            for rescale in [false, true] {
                let expected = reference(x, keep: keep, rescale: rescale)
                for (chunkRows, threads) in [(40, 1), (1, 2), (7, 3)] {
                    let out = try prune(x, keep, rescale: rescale, shape: [40, 3], threads: threads, chunkRows: chunkRows)
                    XCTAssertEqual(out.map(\.bitPattern), expected.map(\.bitPattern),
                                   "keep \(keep) rescale \(rescale), \(chunkRows) rows per chunk")
                }
            }
        }
    }

    /// The kept part is scaled to the whole tensor's L1 norm; nothing is scaled when a norm vanishes.
    func testRescaleMatchesTheL1Norm() throws {
        let factor = Float(10.0 / 7.0)
        XCTAssertEqual(try prune([1, -2, 3, -4], 2..<4, rescale: true), [0, 0, 3 * factor, -4 * factor])
        XCTAssertEqual(try prune([0, 0, 0, 0], 2..<4, rescale: true), [0, 0, 0, 0])
        XCTAssertEqual(try prune([1, 0, 0, 0], 0..<3, rescale: true), [0, 0, 0, 0], "kept norm below 1e-7")
        XCTAssertEqual(try prune([1, -2, 3, -4], 0..<4, rescale: true), [1, -2, 3, -4])
    }

    /// Every element has the same magnitude, so the kept ranks are exactly indices 13..<27, whichever chunk
    /// the boundary-equal elements arrive in.
    func testEqualMagnitudesAcrossChunks() throws {
        let x = (0..<40).map { Float($0 % 2 == 0 ? 0.5 : -0.5) }
        let expected = x.indices.map { (13..<27).contains($0) ? x[$0] : 0 }
        for (chunkRows, threads) in [(1, 1), (3, 2), (8, 3)] {
            XCTAssertEqual(try prune(x, 13..<27, shape: [8, 5], threads: threads, chunkRows: chunkRows), expected)
        }
        try assertChunkInvariant(.magnitudePrune(keep: 13..<27, rescale: true, ties: .index), [x], shape: [8, 5], dtype: .bf16)
    }

    /// Equal magnitudes over four blocks: the blocks holding the window's edges decide element by element, the
    /// others drop all their equal elements, for any chunking.
    func testEqualMagnitudesAcrossBlocks() throws {
        let x = (0..<200_000).map { Float($0 % 3 == 0 ? -0.5 : 0.5) }
        let keep = 70_000..<140_000
        let expected = x.indices.map { keep.contains($0) ? x[$0] : 0 }
        for (chunkRows, threads) in [(2000, 1), (7, 2), (640, 3)] {
            XCTAssertEqual(try prune(x, keep, shape: [2000, 100], threads: threads, chunkRows: chunkRows), expected)
        }
    }

    /// 1601 × 123 values on a grid of 2001 (about a hundred elements per magnitude, so ties straddle chunk and
    /// block boundaries); more than three blocks with a ragged last one.
    func testChunkInvariant() throws {
        let shape = [1601, 123]
        let n = shape[0] * shape[1]
        let x = pseudoRandom(n, seed: 11)
        try assertChunkInvariant(.magnitudePrune(keep: (n - n / 5)..<n, rescale: true, ties: .index), [x], shape: shape, dtype: .bf16)
        try assertChunkInvariant(.magnitudePrune(keep: (n / 3)..<(2 * n / 3), rescale: false, ties: .index), [x], shape: shape)
        let out = try prune(x, (n - n / 5)..<n, shape: shape, threads: 2, chunkRows: 100)
        XCTAssertEqual(out, reference(x, keep: (n - n / 5)..<n, rescale: false))
    }

    /// bf16 operands take one selection pass instead of two (their magnitudes' low 16 bits are zero); the result
    /// is the same as with two passes and as the sort, ties at both boundaries included.
    func testBF16OperandsSelectInOnePassWithTheSameResult() throws {
        let shape = [1601, 123]
        let n = shape[0] * shape[1]
        let x = pseudoRandom(n, seed: 12).map { DTypeConversion.round($0 * 3, to: .bf16) }
        for keep in [(n - n / 2)..<n, (n / 7)..<(n - n / 9), 0..<(n / 3)] {
            let op = Op.magnitudePrune(keep: keep, rescale: true, ties: .index)
            let onePass = try runChunked(op, [x], shape: shape, dtype: .bf16, threads: 2, chunkRows: 7, operandDType: .bf16)
            let twoPasses = try runChunked(op, [x], shape: shape, dtype: .bf16, threads: 2, chunkRows: 7)
            XCTAssertEqual(onePass.map(\.bitPattern), twoPasses.map(\.bitPattern), "\(keep)")
            let sorted = reference(x, keep: keep, rescale: false)
            let unscaled = try runChunked(.magnitudePrune(keep: keep, rescale: false, ties: .index), [x], shape: shape, dtype: .bf16,
                                          chunkRows: 50, operandDType: .bf16)
            XCTAssertEqual(unscaled, sorted, "\(keep)")
        }
    }

    /// A decided cut's output over a held bf16 plane is the same in C (`mg_keep_bf16`, sixteen at a time) as in the
    /// eight-lane Swift loop, for the mask alone and for the magnitude test with tracked keys (NaN and infinity
    /// among the values), over ranges that start and end anywhere.
    func testHeldPlaneMaskInCMatchesTheLanes() throws {
        try XCTSkipUnless(KeepTest.keepsInC, "mg_keep_bf16 needs AVX-512F")
        let n = 4099
        var plane = pseudoRandom(n, seed: 31).map { UInt16(truncatingIfNeeded: DTypeConversion.round($0, to: .bf16).bitPattern >> 16) }
        for (i, special) in [(5, 0x7F80), (17, 0xFF80), (100, 0x7FC1), (2048, 0xFFC0), (3000, 0x0000), (3001, 0x8000)] {
            plane[i] = UInt16(special)
        }
        let bits = pseudoRandom((n + 63) / 64 * 2, seed: 32).map { UInt64(truncatingIfNeeded: $0.bitPattern) }
        let keys = plane.map { UInt32(TieCut.key($0)) }.sorted()
        let (low, high) = (keys[n / 5], keys[n - 3])
        let tests = [KeepTest.byMask,
                     KeepTest(byMask: false, low: low, high: high, first: low, second: high),
                     KeepTest(byMask: false, low: low, high: 0x7FC0, first: keys[n / 2], second: KeepTest.none),
                     KeepTest(byMask: false, low: 0, high: high, first: KeepTest.none, second: KeepTest.none)]
        plane.withUnsafeBufferPointer { p in
            bits.withUnsafeBufferPointer { b in
                for test in tests {
                    for range in [0..<n, 3..<4090, 16..<32, 1..<15, 4000..<4099, 64..<1024] {
                        var lanes = [Float](repeating: -1, count: n), inC = lanes
                        lanes.withUnsafeMutableBufferPointer { o in
                            test.apply(HeldOperand.Plane<BF16Rounding>(p: p.baseAddress!), b.baseAddress!, range, into: o.baseAddress!)
                        }
                        inC.withUnsafeMutableBufferPointer { o in
                            test.applyBF16(p.baseAddress!, b.baseAddress!, range, into: o.baseAddress!)
                        }
                        let differing = (0..<n).filter { inC[$0].bitPattern != lanes[$0].bitPattern }
                        XCTAssertNil(differing.first, "\(differing.count) elements differ, the first at that index: \(test) \(range)")
                        XCTAssertTrue(lanes[range].contains { $0 != 0 } && lanes[range].contains { $0 == 0 } || range.count < 64,
                                      "the case keeps some and drops some: \(test) \(range)")
                    }
                }
            }
        }
    }
}
