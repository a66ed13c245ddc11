@testable import Executor
import Checkpoint
import IR
import Planner
import XCTest

/// Properties of DELLA's rank-based random pruning (`della_prune`).
final class DellaPruneKernelTests: XCTestCase {
    /// Distinct magnitudes in random order (so ranks differ from positions), both signs.
    static func values(count: Int, seed: UInt64 = 3) -> [Float] {
        var state = seed
        return (0..<count).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(Double(state >> 11) * 0x1p-53)
            return (i % 2 == 0 ? 1 : -1) * (0.001 + u)
        }
    }

    /// Prunes `x` of `shape` a few slices per chunk on two threads.
    func prune(_ x: [Float], shape: [Int], density: Double, epsilon: Double, rescale: Bool = false,
               seed: UInt64 = 0) throws -> [Float] {
        try runChunked(.dellaPrune(density: density, epsilon: epsilon, rescale: rescale, seed: seed, key: 11), [x],
                       shape: shape, threads: 2, chunkRows: 7)
    }

    /// The ascending magnitude rank of every element within its row (ties by index), for a [rows, length] tensor.
    func ranks(_ x: [Float], rows: Int, length: Int) -> [Int] {
        var result = [Int](repeating: 0, count: x.count)
        for r in 0..<rows {
            let order = (0..<length).sorted {
                let a = abs(x[r * length + $0]), b = abs(x[r * length + $1])
                return a != b ? a < b : $0 < $1
            }
            for (rank, k) in order.enumerated() { result[r * length + k] = rank }
        }
        return result
    }

    /// Per row, the keep probability rises with magnitude rank: in each fifth of the ranks the kept fraction is
    /// within 3 standard deviations of the mean probability of those ranks, and the fractions increase.
    func testKeepProbabilityIncreasesWithMagnitudeRank() throws {
        let rows = 2000, length = 500
        let x = Self.values(count: rows * length)
        let (density, epsilon) = (0.5, 0.3)
        let out = try prune(x, shape: [rows, length], density: density, epsilon: epsilon)
        let rank = ranks(x, rows: rows, length: length)
        let buckets = 5
        var kept = [Double](repeating: 0, count: buckets)
        var expected = [Double](repeating: 0, count: buckets)
        var variance = [Double](repeating: 0, count: buckets)
        var total = [Double](repeating: 0, count: buckets)
        for i in 0..<x.count {
            let b = rank[i] * buckets / length
            let p = density - epsilon + 2 * epsilon * Double(rank[i]) / Double(length - 1)
            if out[i] != 0 { kept[b] += 1 }
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
    func testEqualMagnitudesAreRankedByIndex() throws {
        let rows = 1000, length = 8
        let x = (0..<(rows * length)).map { i -> Float in i % 3 == 0 ? -2 : 2 }
        let out = try prune(x, shape: [rows, length], density: 0.5, epsilon: 0.5 - 1e-9)
        for r in 0..<rows {
            XCTAssertEqual(out[r * length], 0, "row \(r)")
            XCTAssertNotEqual(out[r * length + length - 1], 0, "row \(r)")
        }
        let flat = try prune(x, shape: [rows * length], density: 0.5, epsilon: 0.5 - 1e-9)
        XCTAssertEqual(flat[0], 0)
        XCTAssertNotEqual(flat[x.count - 1], 0)
    }

    /// Rows of a 3-D tensor run along dimension 1 (stride = product of the later dimensions).
    func testRowsOfHigherRankTensorsRunAlongDimensionOne() throws {
        let layout = DellaRows(shape: [2, 3, 4])
        XCTAssertEqual(layout.count, 8)
        XCTAssertEqual(layout.length, 3)
        XCTAssertEqual(layout.inner, 4)
        XCTAssertEqual((0..<8).map(layout.start(of:)), [0, 1, 2, 3, 12, 13, 14, 15])
        XCTAssertEqual(layout.rows(in: 12..<24), 4..<8, "the second slice along dimension 0")
        XCTAssertEqual(DellaRows(shape: [5]).rows(in: 0..<5), 0..<1, "a 1-D tensor is one row")
        XCTAssertEqual(DellaRule.probability(rank: 0, length: 1, density: 0.4, epsilon: 0.1), 0.4)
        XCTAssertEqual(DellaRule.probability(rank: 4, length: 5, density: 0.4, epsilon: 0.1), 0.5, accuracy: 1e-15)
        // Equal magnitudes ranked by index along dimension 1: position 0 is (almost) never kept, 7 (almost) always.
        let (outer, length, inner) = (500, 8, 3)
        let x = [Float](repeating: 2, count: outer * length * inner)
        let out = try prune(x, shape: [outer, length, inner], density: 0.5, epsilon: 0.5 - 1e-9)
        for o in 0..<outer {
            for j in 0..<inner {
                XCTAssertEqual(out[(o * length + 0) * inner + j], 0, "slice \(o), column \(j)")
                XCTAssertNotEqual(out[(o * length + length - 1) * inner + j], 0, "slice \(o), column \(j)")
            }
        }
    }

    /// `DellaRule.rank` gives every position its ascending magnitude rank, ties by position, whether the row is
    /// ranked by counting (bf16-like values, zeros, duplicates, a constant row) or by radix sort (f32 values whose
    /// bit patterns span more than the count slots), for rows read with a stride too.
    func testRanksByCountingAndByRadixAgreeWithSorting() {
        var uniforms = Uniforms(state: 11)
        func next() -> Double { uniforms.next() }
        let length = 700
        let bf16 = (0..<length).map { _ in DTypeConversion.round(Float((next() - 0.5) * 0.02), to: .bf16) }
        let withZeros = bf16.enumerated().map { $0.offset % 7 == 0 ? 0 : $0.element }
        let duplicates = (0..<length).map { i -> Float in Float(i % 5) * (i % 2 == 0 ? 1 : -1) }
        let constant = [Float](repeating: -3, count: length)
        let wide = (0..<length).map { _ in Float((next() - 0.5) * pow(10, 12 * next() - 6)) }
        for (name, row) in [("bf16", bf16), ("zeros", withZeros), ("duplicates", duplicates), ("constant", constant),
                            ("wide f32", wide)] {
            let expected = ranks(row, rows: 1, length: length)
            for stride in [1, 3] {
                var strided = [Float](repeating: .nan, count: length * stride)
                for k in 0..<length { strided[k * stride] = row[k] }
                var scratch = [UInt32](repeating: 0, count: 3 * length + DellaScratch.countSlots(length: length))
                let actual = strided.withUnsafeBufferPointer { x in
                    scratch.withUnsafeMutableBufferPointer { s in
                        let r = DellaRule.rank(x.baseAddress!, stride: stride, length: length, scratch: s.baseAddress!)
                        return (0..<length).map { Int(r[$0]) }
                    }
                }
                XCTAssertEqual(actual, expected, "\(name), stride \(stride)")
            }
        }
    }

    /// `DellaRule.decide` keeps exactly what the rule's definition does with every element's rank from sorting
    /// (`u < low + rank · step` in f64): rows ranked by counting with few or many equal magnitudes, zeros, constant
    /// rows and rows ranked by radix sort, wide and narrow epsilons, read with a stride too.
    func testDecisionsEqualTheRuleWithSortedRanks() {
        var uniforms = Uniforms(state: 5)
        func next() -> Double { uniforms.next() }
        let length = 600
        let gaussianish = (0..<length).map { _ in DTypeConversion.round(Float((next() + next() - 1) * 0.02), to: .bf16) }
        let fewValues = (0..<length).map { _ in DTypeConversion.round(Float((next() - 0.5) * 0.02).rounded(toPlaces: 3), to: .bf16) }
        let withZeros = gaussianish.enumerated().map { $0.offset % 3 == 0 ? 0 : $0.element }
        let constant = [Float](repeating: 0.5, count: length)
        let wide = (0..<length).map { _ in Float((next() - 0.5) * pow(10, 12 * next() - 6)) }
        for (name, row) in [("bf16", gaussianish), ("few values", fewValues), ("zeros", withZeros), ("constant", constant),
                            ("wide f32", wide)] {
            let rank = ranks(row, rows: 1, length: length)
            for stride in [1, 3] {
                for (density, epsilon) in [(0.5, 0.15), (0.5, 0.49), (0.3, 0.01), (0.6, 0.0)] {
                    var strided = [Float](repeating: .nan, count: length * stride)
                    for k in 0..<length { strided[k * stride] = row[k] }
                    let rows = DellaRows(shape: stride == 1 ? [1, length] : [1, length, stride])
                    let rule = DellaRule(rows: rows, rng: Philox4x32(seed: 9), key: 3, density: density, epsilon: epsilon)
                    var scratch = [UInt32](repeating: 0, count: 3 * length + DellaScratch.countSlots(length: length))
                    var kept = [Bool](repeating: false, count: length)
                    strided.withUnsafeBufferPointer { x in
                        scratch.withUnsafeMutableBufferPointer { s in
                            rule.decide(row: 0, x: x.baseAddress!, scratch: s.baseAddress!) { i, keep in kept[i / stride] = keep }
                        }
                    }
                    let low = (density - epsilon) * 0x1p32, step = 2 * epsilon / Double(length - 1) * 0x1p32
                    let expected = (0..<length).map { k in
                        Double(Philox4x32(seed: 9).draw(stream: 3, index: k * stride)) < low + Double(rank[k]) * step
                    }
                    XCTAssertEqual(kept, expected, "\(name), stride \(stride), density \(density), epsilon \(epsilon)")
                }
            }
        }
    }

    /// The output keeps exactly the elements `DellaRule.decide` keeps: with rescaling from the decisions the pass
    /// kept (`KeepBits`), without it from deciding in the output sweep.
    func testOutputKeepsTheRuleDecisions() throws {
        for shape in [[64, 300], [7, 64, 30]] {
            let x = Self.values(count: shape.reduce(1, *))
            let rows = DellaRows(shape: shape)
            let rule = DellaRule(rows: rows, rng: Philox4x32(seed: 5), key: 11, density: 0.4, epsilon: 0.2)
            var keep = [Bool](repeating: false, count: x.count)
            var scratch = [UInt32](repeating: 0, count: 3 * rows.length + DellaScratch.countSlots(length: rows.length))
            x.withUnsafeBufferPointer { xs in
                scratch.withUnsafeMutableBufferPointer { s in
                    for row in 0..<rows.count {
                        rule.decide(row: row, x: xs.baseAddress!, scratch: s.baseAddress!) { i, kept in keep[i] = kept }
                    }
                }
            }
            for rescale in [false, true] {
                let out = try runChunked(.dellaPrune(density: 0.4, epsilon: 0.2, rescale: rescale, seed: 5, key: 11), [x],
                                         shape: shape, threads: 2, chunkRows: 3)
                XCTAssertEqual(out.map { $0 != 0 }, keep, "\(shape), rescale \(rescale)")
            }
        }
    }

    func testRescalingKeepsTheL1Norm() throws {
        let x = Self.values(count: 100 * 64)
        let out = try prune(x, shape: [100, 64], density: 0.4, epsilon: 0.2, rescale: true)
        let before = x.reduce(0.0) { $0 + Double(abs($1)) }
        let after = out.reduce(0.0) { $0 + Double(abs($1)) }
        XCTAssertEqual(after, before, accuracy: 1e-4 * before)
    }

    /// A zero tensor has vanishing norms: nothing is rescaled (no 0/0).
    func testZeroTensorStaysZeroWithRescaling() throws {
        let zero = [Float](repeating: 0, count: 30 * 40)
        XCTAssertEqual(try prune(zero, shape: [30, 40], density: 0.5, epsilon: 0.1, rescale: true), zero)
    }

    /// The same seed gives the same bytes for any chunking and thread count, for 2-D and 3-D tensors spanning
    /// several blocks, and 1-D tensors; another seed gives another mask.
    func testDellaPruneIsChunkInvariant() throws {
        for shape in [[1601, 123], [7, 64, 300], [5000]] {
            let x = Self.values(count: shape.reduce(1, *))
            for rescale in [false, true] {
                let op = Op.dellaPrune(density: 0.3, epsilon: 0.1, rescale: rescale, seed: 0, key: 11)
                try assertChunkInvariant(op, [x], shape: shape, dtype: shape.count == 2 && rescale ? .bf16 : .f32)
            }
            // Holding its operand (a bf16 or f16 task vector) from the pass to the output sweep gives the same bytes.
            for dtype in [DType.bf16, .f16] {
                try assertChunkInvariant(.dellaPrune(density: 0.3, epsilon: 0.1, rescale: true, seed: 0, key: 11),
                                         [x.map { DTypeConversion.round($0, to: dtype) }], shape: shape, dtype: dtype,
                                         holding: true)
            }
        }
        let x = Self.values(count: 1601 * 123)
        let reference = try prune(x, shape: [1601, 123], density: 0.3, epsilon: 0.1, rescale: true)
        let other = try prune(x, shape: [1601, 123], density: 0.3, epsilon: 0.1, rescale: true, seed: 1)
        XCTAssertNotEqual(other.map(\.bitPattern), reference.map(\.bitPattern), "another seed gives another mask")
    }

    /// The kernel's state stays within the planner's bound of it (row scratch along dimension 1, keep flags).
    func testStateStaysWithinThePlannedBound() throws {
        let op = Op.dellaPrune(density: 0.3, epsilon: 0.1, rescale: true, seed: 0, key: 11)
        try assertStateMatchesDeclaredCost(op, operands: 1, shape: [1601, 123], chunkRows: 100)
        try assertStateMatchesDeclaredCost(op, operands: 1, shape: [7, 64, 300], chunkRows: 2)
        try assertStateMatchesDeclaredCost(op, operands: 1, shape: [5000], chunkRows: 1)
        try assertStateMatchesDeclaredCost(op, operands: 1, shape: [1601, 123], chunkRows: 100, dtype: .bf16, holding: true)
        try assertStateMatchesDeclaredCost(op, operands: 1, shape: [7, 64, 300], chunkRows: 2, dtype: .f16, holding: true)
        try assertStateMatchesDeclaredCost(.dellaPrune(density: 0.3, epsilon: 0.1, rescale: false, seed: 0, key: 11),
                                          operands: 1, shape: [7, 64, 300], chunkRows: 2)
    }
}

/// Uniform doubles in [0, 1) from a 64-bit linear congruential generator (Knuth's MMIX constants).
private struct Uniforms {
    var state: UInt64

    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) * 0x1p-53
    }
}

private extension Float {
    /// Rounded to `places` decimal places (so that a row holds few distinct values).
    func rounded(toPlaces places: Int) -> Float {
        let scale = Float(pow(10, Double(places)))
        return (self * scale).rounded() / scale
    }
}
