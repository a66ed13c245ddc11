@testable import Executor
import IR
import XCTest

/// Properties of DELLA's rank-based random pruning (`della_prune`).
final class DellaPruneKernelTests: XCTestCase {
    /// Distinct magnitudes in random order (so ranks differ from positions), both signs.
    static func values(count: Int, seed: UInt64 = 3) -> TensorBuffer {
        var state = seed
        let b = TensorBuffer(count: count)
        for i in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(Double(state >> 11) * 0x1p-53)
            b.pointer[i] = (i % 2 == 0 ? 1 : -1) * (0.001 + u)
        }
        return b
    }

    func prune(_ x: TensorBuffer, shape: [Int], density: Double, epsilon: Double, rescale: Bool = false,
               seed: UInt64 = 0, threads: Int = 2) -> TensorBuffer {
        DellaPruneKernel.prune(x, shape: shape, density: density, epsilon: epsilon, rescale: rescale, seed: seed, key: 11,
                               dtype: .f32, parallel: Parallel(threads: threads))
    }

    /// The ascending magnitude rank of every element within its row (ties by index), for a [rows, length] tensor.
    func ranks(_ x: TensorBuffer, rows: Int, length: Int) -> [Int] {
        var result = [Int](repeating: 0, count: x.count)
        for r in 0..<rows {
            let order = (0..<length).sorted {
                let a = abs(x.pointer[r * length + $0]), b = abs(x.pointer[r * length + $1])
                return a != b ? a < b : $0 < $1
            }
            for (rank, k) in order.enumerated() { result[r * length + k] = rank }
        }
        return result
    }

    /// Per row, the keep probability rises with magnitude rank: in each fifth of the ranks the kept fraction is
    /// within 3 standard deviations of the mean probability of those ranks, and the fractions increase.
    func testKeepProbabilityIncreasesWithMagnitudeRank() {
        let rows = 2000, length = 500
        let x = Self.values(count: rows * length)
        let (density, epsilon) = (0.5, 0.3)
        let out = prune(x, shape: [rows, length], density: density, epsilon: epsilon)
        let rank = ranks(x, rows: rows, length: length)
        let buckets = 5
        var kept = [Double](repeating: 0, count: buckets)
        var expected = [Double](repeating: 0, count: buckets)
        var variance = [Double](repeating: 0, count: buckets)
        var total = [Double](repeating: 0, count: buckets)
        for i in 0..<x.count {
            let b = rank[i] * buckets / length
            let p = density - epsilon + 2 * epsilon * Double(rank[i]) / Double(length - 1)
            if out.pointer[i] != 0 { kept[b] += 1 }
            expected[b] += p
            variance[b] += p * (1 - p)
            total[b] += 1
        }
        for b in 0..<buckets {
            XCTAssertLessThan(abs(kept[b] - expected[b]), 3 * variance[b].squareRoot(),
                              "ranks \(b)/\(buckets): kept \(kept[b]) of \(total[b]), expected \(expected[b])")
            if b > 0 { XCTAssertGreaterThan(kept[b], kept[b - 1]) }
        }
    }

    /// Equal magnitudes are ranked by index: with probabilities from ~0 to ~1, the first element of each
    /// constant row is (almost) never kept and the last (almost) always; a 1-D tensor is one row.
    func testEqualMagnitudesAreRankedByIndex() {
        let rows = 1000, length = 8
        let x = TensorBuffer(count: rows * length)
        for i in 0..<x.count { x.pointer[i] = i % 3 == 0 ? -2 : 2 }
        let out = prune(x, shape: [rows, length], density: 0.5, epsilon: 0.5 - 1e-9)
        for r in 0..<rows {
            XCTAssertEqual(out.pointer[r * length], 0, "row \(r)")
            XCTAssertNotEqual(out.pointer[r * length + length - 1], 0, "row \(r)")
        }
        let flat = prune(x, shape: [rows * length], density: 0.5, epsilon: 0.5 - 1e-9)
        XCTAssertEqual(flat.pointer[0], 0)
        XCTAssertNotEqual(flat.pointer[x.count - 1], 0)
    }

    /// Rows of a 3-D tensor run along dimension 1 (stride = product of the later dimensions).
    func testRowsOfHigherRankTensorsRunAlongDimensionOne() {
        let layout = RowLayout(shape: [2, 3, 4], count: 24)
        XCTAssertEqual(layout.count, 8)
        XCTAssertEqual(layout.length, 3)
        XCTAssertEqual(layout.stride, 4)
        XCTAssertEqual((0..<8).map(layout.start(of:)), [0, 1, 2, 3, 12, 13, 14, 15])
        XCTAssertEqual(DellaPruneKernel.probability(rank: 0, length: 1, density: 0.4, epsilon: 0.1), 0.4)
        XCTAssertEqual(DellaPruneKernel.probability(rank: 4, length: 5, density: 0.4, epsilon: 0.1), 0.5, accuracy: 1e-15)
    }

    func testRescalingKeepsTheL1Norm() {
        let x = Self.values(count: 100 * 64)
        let out = prune(x, shape: [100, 64], density: 0.4, epsilon: 0.2, rescale: true)
        let before = x.array.reduce(0.0) { $0 + Double(abs($1)) }
        let after = out.array.reduce(0.0) { $0 + Double(abs($1)) }
        XCTAssertEqual(after, before, accuracy: 1e-4 * before)
    }

    func testSameSeedGivesSameBytesForAnyThreadCount() {
        let shape = [1601, 123]
        let x = Self.values(count: 1601 * 123)
        let reference = prune(x, shape: shape, density: 0.3, epsilon: 0.1, rescale: true, threads: 1).array.map(\.bitPattern)
        for threads in [2, 3, 8] {
            let bits = prune(x, shape: shape, density: 0.3, epsilon: 0.1, rescale: true, threads: threads).array.map(\.bitPattern)
            XCTAssertTrue(bits == reference, "differs with \(threads) threads")
        }
        let other = prune(x, shape: shape, density: 0.3, epsilon: 0.1, rescale: true, seed: 1).array.map(\.bitPattern)
        XCTAssertNotEqual(other, reference, "another seed gives another mask")
    }
}
