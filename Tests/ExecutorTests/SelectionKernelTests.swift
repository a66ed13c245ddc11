import Foundation
@testable import Executor
import IR
import Planner
import XCTest

/// The variance top-k and arcee_fusion selections, and the state every selection kernel holds.
final class SelectionKernelTests: XCTestCase {
    /// mergekit's `sce_mask` by sorting: the k largest nonzero variances, equal ones by lower index.
    func referenceTopK(_ xs: [[Float]], fraction: Double) -> [Float] {
        let n = xs[0].count
        let variance: [Float] = (0..<n).map { i in
            let mean = xs.reduce(0.0) { $0 + Double($1[i]) } / Double(xs.count)
            return Float(xs.reduce(0.0) { $0 + (Double($1[i]) - mean) * (Double($1[i]) - mean) } / Double(xs.count))
        }
        let order = (0..<n).filter { variance[$0] != 0 }.sorted { (-variance[$0], $0) < (-variance[$1], $1) }
        let k = min(order.count, Int(Float(order.count) * Float(fraction)))
        var out = [Float](repeating: 0, count: n)
        for i in order.prefix(k) { out[i] = 1 }
        return out
    }

    /// Variances 1, 1, 1, 1, 0, 0 in rows of one: the equal ones are taken from the lowest index, across chunks.
    func testVarianceTopKTakesEqualVariancesFromTheLowerIndex() throws {
        let xs: [[Float]] = [[1, 1, 1, 1, 0, 1], [-1, -1, -1, -1, 0, 1]]
        for (chunkRows, threads) in [(1, 1), (4, 2), (6, 3)] {
            let topK = { (f: Double) in
                try runChunked(.varianceTopK(fraction: f), [variances(xs, shape: [6, 1])], shape: [6, 1], threads: threads,
                               chunkRows: chunkRows)
            }
            XCTAssertEqual(try topK(0.5), [1, 1, 0, 0, 0, 0])
            XCTAssertEqual(try topK(0.75), [1, 1, 1, 0, 0, 0])
            XCTAssertEqual(try topK(0.999), [1, 1, 1, 0, 0, 0], "⌊4 · 0.999⌋ = 3")
        }
    }

    /// Equal operands have no nonzero variance, so nothing is kept.
    func testVarianceTopKOfEqualOperandsIsEmpty() throws {
        let x = pseudoRandom(50, seed: 3)
        XCTAssertEqual(try runChunked(.varianceTopK(fraction: 0.5), [variances([x, x], shape: [10, 5])], shape: [10, 5],
                                      chunkRows: 2),
                       [Float](repeating: 0, count: 50))
    }

    /// 1601 × 123 (more than three blocks, ragged last one) with many equal variances: the sort's result for
    /// any chunking and thread count.
    func testVarianceTopKMatchesASortForAnyChunking() throws {
        let n = 1601 * 123
        let xs = [pseudoRandom(n, seed: 21), pseudoRandom(n, seed: 22).map { $0.rounded() }, [Float](repeating: 0, count: n)]
        let v = try variances(xs, shape: [1601, 123])
        XCTAssertEqual(try runChunked(.varianceTopK(fraction: 0.37), [v], shape: [1601, 123], threads: 2, chunkRows: 50),
                       referenceTopK(xs, fraction: 0.37))
        try assertChunkInvariant(.varianceTopK(fraction: 0.37), [v], shape: [1601, 123], dtype: .bf16)
    }

    /// The `variance` op: per element, the f64 mean and sum of squared deviations over the operands in order,
    /// divided by their count, as f32 (`referenceTopK`'s variances), for any chunking and thread count; NaN
    /// and infinite operands give NaN.
    func testVarianceIsThePopulationVarianceInF64() throws {
        let n = 1601 * 123
        var xs = [pseudoRandom(n, seed: 31), pseudoRandom(n, seed: 32), pseudoRandom(n, seed: 33).map { $0 * 1e-3 }]
        xs[0][5] = .nan
        xs[1][7] = .infinity
        let expected: [Float] = (0..<n).map { i in
            let mean = xs.reduce(0.0) { $0 + Double($1[i]) } / 3
            return Float(xs.reduce(0.0) { $0 + (Double($1[i]) - mean) * (Double($1[i]) - mean) } / 3)
        }
        let v = try variances(xs, shape: [1601, 123])
        XCTAssertEqual(v.map(\.bitPattern), expected.map(\.bitPattern))
        XCTAssertTrue(v[5].isNaN && v[7].isNaN)
        try assertChunkInvariant(.variance, xs, shape: [1601, 123])
        // Two operands, three (the unrolled form) four, five and seven (the division by the count is a corrected
        // product by its reciprocal), with magnitudes from 1e-30 to 1e30.
        let spread = (0..<n).map { i in Float(pow(10.0, Double(i % 61 - 30))) }
        let more = (35..<39).map { seed in zip(pseudoRandom(n, seed: UInt64(seed)), spread).map { $0 * $1 } }
        // Three 2^30 apart, whose f64 sums round (the unrolled form of three operands on inexact sums).
        let apart = [pseudoRandom(n, seed: 41).map { $0 * 0x1p30 }, pseudoRandom(n, seed: 42),
                     pseudoRandom(n, seed: 43).map { $0 * 0x1p-30 }]
        for ys in [Array(xs.prefix(2)), Array(more.prefix(3)), apart, xs + [more[0]], xs + Array(more.prefix(2)), xs + more] {
            let expected: [Float] = (0..<n).map { i in
                let mean = ys.reduce(0.0) { $0 + Double($1[i]) } / Double(ys.count)
                return Float(ys.reduce(0.0) { $0 + (Double($1[i]) - mean) * (Double($1[i]) - mean) } / Double(ys.count))
            }
            XCTAssertEqual(try variances(ys, shape: [1601, 123]).map(\.bitPattern), expected.map(\.bitPattern))
        }
    }

    /// Row-local importances over chunks of whole rows; bf16 output; a 3-D tensor (rows of its last dimension).
    func testArceeFusionIsChunkInvariant() throws {
        let n = 1601 * 123
        let a = pseudoRandom(n, seed: 31), b = pseudoRandom(n, seed: 32).map { $0 * 0.5 }
        try assertChunkInvariant(.arceeFusion, [a, b], shape: [1601, 123], dtype: .bf16)
        try assertChunkInvariant(.arceeFusion, [Array(a[0..<2520]), Array(b[0..<2520])], shape: [40, 9, 7])
        let zero = [Float](repeating: 0, count: 60)
        XCTAssertEqual(try runChunked(.arceeFusion, [zero, zero], shape: [12, 5], chunkRows: 5), zero)
    }

    /// On bf16 values of either sign (and ±0, ±∞, NaN), the first pass alone gives the statistics the second pass
    /// finds: what lets a bf16 arcee_fusion select its quartiles in one pass.
    func testBF16TotalKeysSelectInOnePassWithTheSameResult() throws {
        struct Keys: OrderKeys {
            let keys: [UInt32]
            func forEach(_ range: Range<Int>, _ body: (Int, UInt32) -> Void) { for i in range { body(i, keys[i]) } }
        }
        let specials: [Float] = [0, -0, .infinity, -.infinity, .nan, -.nan, 1, -1]
        let values = pseudoRandom(50_000, seed: 7).enumerated().map { i, x -> Float in
            i % 97 == 0 ? specials[(i / 97) % specials.count] : Float(bitPattern: (x * 3).bitPattern & 0xFFFF_0000)
        }
        let keys = Keys(keys: values.map(OrderKey.total))
        let ranks = [0, 1, 12_499, 24_999, 37_499, 49_998, 49_999]
        for threads in [1, 2] {
            let parallel = Parallel(threads: threads)
            func firstPass() -> StreamingSelect {
                let select = StreamingSelect(elementCount: values.count, threads: threads, memory: MemoryAccount())
                for start in stride(from: 0, to: values.count, by: 4_096) {
                    select.count(start..<min(values.count, start + 4_096), keys, parallel: parallel)
                }
                select.finishFirstPass()
                return select
            }
            let two = firstPass()
            var expected: [StreamingSelect.Statistic] = []
            for batch in stride(from: 0, to: ranks.count, by: StreamingSelect.maxRanks) {
                let wanted = Array(ranks[batch..<min(ranks.count, batch + StreamingSelect.maxRanks)])
                let select = batch == 0 ? two : firstPass()
                select.beginSecondPass(ranks: wanted)
                select.count(0..<values.count, keys, parallel: parallel)
                expected += select.finishSecondPass()
            }
            XCTAssertEqual(firstPass().statisticsFromFirstPass(bf16TotalRanks: ranks), expected)
            let sorted = keys.keys.sorted()
            XCTAssertEqual(expected.map(\.key), ranks.map { sorted[$0] })
        }
    }

    /// A half-precision KL divergence takes its logarithms from `HalfLogarithms`: each row's terms have the same
    /// bits as with glibc's `logf` called on each rounded quotient (NaN where that gives NaN), and so does the sum,
    /// on rows whose softmaxes span many magnitudes (so the quotients do).
    func testHalfPrecisionDivergenceMatchesLogfPerElement() throws {
        for (dtype, round) in [(DType.bf16, { (x: Float) in BF16Rounding.round(x) }),
                               (.f16, { (x: Float) in F16Rounding.round(x) })] {
            for (length, seed, scale) in [(2048, UInt64(41), Float(3)), (2048, 44, 12), (37, 42, 12), (5, 43, 1)] {
                let x = pseudoRandom(length, seed: seed).map { round($0 * scale) }
                let y = pseudoRandom(length, seed: seed + 100).map { round($0 * scale) }
                var storage = [Float](repeating: 0, count: 3 * length)
                let actual = storage.withUnsafeMutableBufferPointer { buffer in
                    RowDivergence(buffer.baseAddress!, length: length).divergence(x, y, count: length, dtype: dtype)
                }
                var p = [Float](repeating: 0, count: length), q = p
                RowDivergence.softmax(x, count: length, into: &p)
                RowDivergence.softmax(y, count: length, into: &q)
                var terms: [Float] = (0..<length).map { i in
                    let pi = round(round(p[i]) + 1e-8), qi = round(round(q[i]) + 1e-8)
                    return round(pi * round(logf(round(pi / qi))))
                }
                for (i, (a, e)) in zip(storage[(2 * length)...], terms).enumerated() where !(a.isNaN && e.isNaN) {
                    XCTAssertEqual(a.bitPattern, e.bitPattern, "\(dtype) row of \(length) (scale \(scale)), term \(i)")
                }
                var sum = TorchHalfReductions.RowSum(length: length)
                terms.withUnsafeMutableBufferPointer { sum.add($0.baseAddress!, count: length) }
                let expected = round(sum.sum)
                XCTAssertTrue(actual.bitPattern == expected.bitPattern || (actual.isNaN && expected.isNaN),
                              "\(dtype) row of \(length) (scale \(scale)): \(actual) vs \(expected)")
            }
        }
    }

    /// arcee_fusion on a bf16 merge, against its definition written out: rows' KL divergences, importances
    /// `R(|R(b − a)| · kl)`, the quartiles of the sorted importances, the threshold's three rounded ops and
    /// `R(a + R(b − a) · mask)` (an infinite difference gives NaN where the mask is 0, as mergekit's product does).
    func testHalfPrecisionArceeFusionFollowsItsDefinition() throws {
        let (rows, length) = (9, 40), n = rows * length
        func r(_ x: Float) -> Float { BF16Rounding.round(x) }
        let a = pseudoRandom(n, seed: 51).map { r($0 * 4) }
        var b = zip(a, pseudoRandom(n, seed: 52)).enumerated().map { i, pair in r(pair.0 + pair.1 * (i % 7 == 0 ? 2 : 0.05)) }
        b[17] = .infinity
        var storage = [Float](repeating: 0, count: 3 * length)
        let kl: [Float] = (0..<rows).map { row in
            storage.withUnsafeMutableBufferPointer { buffer in
                RowDivergence(buffer.baseAddress!, length: length)
                    .divergence(Array(b[(row * length)..<((row + 1) * length)]), Array(a[(row * length)..<((row + 1) * length)]),
                                count: length, dtype: .bf16)
            }
        }
        let differences = (0..<n).map { r(b[$0] - a[$0]) }
        let importances = (0..<n).map { r(abs(differences[$0]) * kl[$0 / length]) }
        let sorted = importances.sorted { x, y in y.isNaN ? !x.isNaN : (!x.isNaN && x < y) }
        let q = [0.25, 0.5, 0.75].map { (f: Float) in sorted[Int(f * Float(n - 1))] }
        let threshold = r(q[1] + r(1.5 * r(q[2] - q[0])))
        let expected = (0..<n).map { r(a[$0] + differences[$0] * (importances[$0] >= threshold ? 1 : 0)) }
        XCTAssertTrue(expected.contains { $0 != $0 }, "the infinite difference shows")
        for threads in [1, 2] {
            let actual = try runChunked(.arceeFusion, [a, b], shape: [rows, length], dtype: .bf16, threads: threads, chunkRows: 2)
            XCTAssertEqual(actual.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern },
                           expected.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern })
        }
    }

    /// The vector `OrderKey.total` arcee_fusion's half-precision pass counts with agrees with the scalar one on
    /// both signs, zeros, infinities, subnormals and NaNs.
    func testVectorTotalKeysMatchTheScalarOnes() {
        let values: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, .leastNonzeroMagnitude,
                               -.leastNonzeroMagnitude, .greatestFiniteMagnitude, -3.5e-3, 7.25, Float(bitPattern: 0x7FC0_0001)]
        for start in stride(from: 0, to: values.count, by: 8) {
            var v = SIMD8<Float>(repeating: 2)
            for l in 0..<min(8, values.count - start) { v[l] = values[start + l] }
            let keys = OrderKey.total(v)
            for l in 0..<8 { XCTAssertEqual(keys[l], OrderKey.total(v[l]), "\(v[l])") }
        }
    }

    /// The eight-lane variance and magnitude keys (`keys8`) the selections' vector loops read agree with the scalar
    /// ones on zeros of both signs, subnormals, infinities, NaNs and ordinary values.
    func testVectorVarianceAndMagnitudeKeysMatchTheScalarOnes() {
        let values: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, -.nan, .leastNonzeroMagnitude,
                               -.leastNonzeroMagnitude, .greatestFiniteMagnitude, 3.5e-3, 7.25, Float(bitPattern: 0x7FC0_0001),
                               Float(bitPattern: 0xFFFF_FFFF), 2.5e-38]
        values.withUnsafeBufferPointer { x in
            let variance = VarianceKeys(variances: x.baseAddress!), magnitude = MagnitudeKeys(x: x.baseAddress!)
            for start in stride(from: 0, to: values.count, by: 8) {
                let v = variance.keys8(start), m = magnitude.keys8(start)
                variance.forEach(start..<(start + 8)) { i, key in XCTAssertEqual(v[i - start], key, "\(values[i])") }
                magnitude.forEach(start..<(start + 8)) { i, key in XCTAssertEqual(m[i - start], key, "\(values[i])") }
            }
        }
    }

    /// `LaneMask.equal` and `LaneMask.below` give all ones exactly where `==` and `<` hold, over the whole unsigned
    /// range (both halves, neighbours, the extremes).
    func testLaneMasksCompareLikeTheScalarOperators() {
        let edges: [UInt32] = [0, 1, 2, 0x7FFF_FFFE, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0001, 0xFFFF_FFFE, 0xFFFF_FFFF,
                               0x1_0000, 0x3F80_0000, 0x7F80_0000]
        for a in edges {
            for start in stride(from: 0, to: edges.count, by: 8) {
                var b = SIMD8<UInt32>(repeating: 5)
                for l in 0..<min(8, edges.count - start) { b[l] = edges[start + l] }
                let va = SIMD8(repeating: a)
                let equal = LaneMask.equal(va, b), below = LaneMask.below(va, b)
                for l in 0..<8 {
                    XCTAssertEqual(equal[l], a == b[l] ? .max : 0, "\(a) == \(b[l])")
                    XCTAssertEqual(below[l], a < b[l] ? .max : 0, "\(a) < \(b[l])")
                }
                XCTAssertEqual(LaneMask.any(equal), (0..<8).contains { a == b[$0] })
            }
        }
    }

    /// Each selection kernel holds exactly its declared state for several thread counts and chunkings.
    func testStateMatchesTheDeclaredCost() throws {
        let shape = [1601, 123]
        let n = shape[0] * shape[1]
        for chunkRows in [1601, 100, 7] {
            try assertStateMatchesDeclaredCost(.magnitudePrune(keep: (n / 2)..<n, rescale: true, ties: .index), operands: 1,
                                               shape: shape, chunkRows: chunkRows)
            try assertStateMatchesDeclaredCost(.magnitudePrune(keep: 0..<n, rescale: true, ties: .index), operands: 1, shape: shape,
                                               chunkRows: chunkRows)
            for ties in [TieOrder.torchDescending, .torchAscending] {
                for rescale in [false, true] {
                    try assertStateMatchesDeclaredCost(.magnitudePrune(keep: (n / 3)..<(n - 17), rescale: rescale, ties: ties),
                                                       operands: 1, shape: shape, chunkRows: chunkRows)
                }
            }
            try assertStateMatchesDeclaredCost(.varianceTopK(fraction: 0.3), operands: 1, shape: shape, chunkRows: chunkRows)
            try assertStateMatchesDeclaredCost(.arceeFusion, operands: 2, shape: shape, chunkRows: chunkRows)
        }
    }
}
