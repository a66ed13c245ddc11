@testable import Executor
import Checkpoint
import IR
import XCTest

/// Statistical and determinism properties of DARE's random pruning (`random_prune`) and the Philox generator.
final class RandomPruneKernelTests: XCTestCase {
    /// 1000 rows of 1000.
    static let shape = [1000, 1000]

    /// `1 + u` with u uniform in [−3, 3) from a fixed LCG: nonzero mean, both signs.
    static func deltas(count: Int = 1_000_000, seed: UInt64 = 7) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Double(state >> 11) * 0x1p-53
            return Float(1 + 6 * u - 3)
        }
    }

    /// Prunes `x` as a [rows, 1000] tensor, 250 rows per chunk on two threads.
    func prune(_ x: [Float], density: Double, rescale: Bool = false, seed: UInt64 = 0, key: UInt64 = 1,
               dtype: DType = .f32) throws -> [Float] {
        try runChunked(.randomPrune(density: density, rescale: rescale, seed: seed, key: key), [x],
                       shape: [x.count / 1000, 1000], dtype: dtype, threads: 2, chunkRows: 250)
    }

    /// Random123's known-answer vectors for Philox4x32-10.
    func testPhiloxMatchesKnownAnswers() {
        let zero = Philox4x32(seed: 0).block((0, 0, 0, 0))
        XCTAssertEqual([zero.0, zero.1, zero.2, zero.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let ones = Philox4x32(seed: .max).block((.max, .max, .max, .max))
        XCTAssertEqual([ones.0, ones.1, ones.2, ones.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let pi = Philox4x32(seed: 0x299f_31d0 << 32 | 0xa409_3822).block((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344))
        XCTAssertEqual([pi.0, pi.1, pi.2, pi.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    /// (c) The number of kept elements is Binomial(n, density): within 3 standard deviations.
    func testKeptFractionIsWithinThreeSigmaOfDensity() throws {
        let x = Self.deltas()
        let n = Double(x.count)
        // 0.1, 0.9: whole words; 0.5, 0.53125 (bf16's 0.53): 8-bit fields; 0.5 + 2⁻¹⁰: 16-bit fields.
        for (density, key) in [(0.1, 1), (0.5, 2), (0.9, 3), (0.53125, 4), (0.5 + 0x1p-10, 5)] as [(Double, UInt64)] {
            let kept = Double(try prune(x, density: density, key: key).filter { $0 != 0 }.count)
            let sd = (n * density * (1 - density)).squareRoot()
            XCTAssertLessThan(abs(kept - n * density), 3 * sd, "density \(density): kept \(kept) of \(n)")
        }
    }

    /// (d) With L1 rescaling the mean of the pruned deltas stays the mean of the deltas (about 1); without it,
    /// it shrinks to about `density`.
    func testRescalingKeepsTheExpectedValue() throws {
        let x = Self.deltas()
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
        XCTAssertEqual(mean, 1, accuracy: 0.01)
        for density in [0.1, 0.3, 0.7] {
            let rescaled = try prune(x, density: density, rescale: true).reduce(0.0) { $0 + Double($1) } / Double(x.count)
            XCTAssertEqual(rescaled, mean, accuracy: 0.03 * mean, "density \(density)")
            let plain = try prune(x, density: density).reduce(0.0) { $0 + Double($1) } / Double(x.count)
            XCTAssertEqual(plain, density * mean, accuracy: 0.03 * mean, "density \(density) without rescale")
        }
    }

    /// (b) Different seeds (or stream keys) give different masks; the same seed and key the same mask.
    func testDifferentSeedsGiveDifferentMasks() throws {
        let x = Self.deltas(count: 100_000)
        func mask(seed: UInt64, key: UInt64) throws -> [Bool] {
            try prune(x, density: 0.5, seed: seed, key: key).map { $0 != 0 }
        }
        let reference = try mask(seed: 1, key: 1)
        XCTAssertEqual(try mask(seed: 1, key: 1), reference)
        for other in [try mask(seed: 2, key: 1), try mask(seed: 1, key: 2)] {
            let differing = zip(reference, other).filter { $0 != $1 }.count
            // Independent masks of density 0.5 differ in about half the elements.
            XCTAssertEqual(Double(differing) / Double(x.count), 0.5, accuracy: 0.02)
        }
    }

    /// Element i is kept when its 32-bit Philox draw for (seed, key, i) is below density · 2³²; with rescaling the
    /// kept f32 value is multiplied by the f32 factor `Float(‖x‖₁ / ‖kept‖₁)`, the norms summed in eight lanes by
    /// index mod 8, then rounded to the dtype.
    func testKeepsByTheDrawAndRescalesInF32BeforeRounding() throws {
        let x = Self.deltas(count: 60_000)
        let rng = Philox4x32(seed: 4)
        let kept = x.indices.map { Double(rng.draw(stream: 6, index: $0)) < 0.4 * 0x1p32 ? x[$0] : 0 }
        XCTAssertEqual(try prune(x, density: 0.4, seed: 4, key: 6).map(\.bitPattern), kept.map(\.bitPattern))
        // One block: each lane sums its elements in index order, the lanes are added in lane order.
        func norm(_ v: [Float]) -> Double {
            var lanes = [Double](repeating: 0, count: 8)
            for (i, e) in v.enumerated() { lanes[i % 8] += Double(abs(e)) }
            return lanes.reduce(0, +)
        }
        let factor = Float(norm(x) / norm(kept))
        let expected = kept.map { DTypeConversion.round($0 * factor, to: .bf16).bitPattern }
        XCTAssertEqual(try prune(x, density: 0.4, rescale: true, seed: 4, key: 6, dtype: .bf16).map(\.bitPattern), expected)
    }

    /// Element draws: element 32g + 8w + l is word w of the block with counter (8g + l, stream); the eight blocks
    /// computed in SIMD lanes and any range filled at once give the same words as the block function.
    func testDrawsAreTheBlockWordsOfTheirLanes() {
        let rng = Philox4x32(seed: 0x1234_5678_9abc_def0)
        let stream: UInt64 = 0xfeed_beef_0000_0007
        for g in [0, 1, 77, 1 << 40] as [UInt64] {
            let group = rng.group(g, stream: stream)
            let (first, second) = rng.groupPair(g, stream: stream), next = rng.group(g &+ 1, stream: stream)
            for e in 0..<32 {
                XCTAssertEqual(first[e], group[e], "group pair, first, element \(e)")
                XCTAssertEqual(second[e], next[e], "group pair, second, element \(e)")
            }
            for lane in 0..<8 {
                let counter = g * 8 + UInt64(lane)
                let b = rng.block((UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32),
                                   UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)))
                let words = [b.0, b.1, b.2, b.3]
                for w in 0..<4 {
                    XCTAssertEqual(group[8 * w + lane], words[w])
                    XCTAssertEqual(rng.draw(stream: stream, index: Int(g) * 32 + 8 * w + lane), words[w])
                }
            }
        }
        for range in [0..<100, 5..<6, 13..<77, 31..<33, 64..<96, 1000..<1003, 32..<200, 0..<64, 7..<135] {
            var filled = [UInt32](repeating: 0, count: range.count)
            filled.withUnsafeMutableBufferPointer { rng.fill(stream: stream, range, into: $0.baseAddress!) }
            XCTAssertEqual(filled, range.map { rng.draw(stream: stream, index: $0) }, "\(range)")
        }
    }

    /// The draws are uniform: each of 16 equal bins of the 32-bit range holds its share of 2^20 draws (chi-square
    /// with 15 degrees of freedom below its 0.999 quantile, 37.7), and so does each of the four words.
    func testDrawsAreUniform() {
        let rng = Philox4x32(seed: 99)
        let n = 1 << 20
        var bins = [[Double]](repeating: [Double](repeating: 0, count: 16), count: 5)
        for i in 0..<n {
            let b = Int(rng.draw(stream: 3, index: i) >> 28)
            bins[0][b] += 1
            bins[1 + (i >> 3) & 3][b] += 1
        }
        for (k, counts) in bins.enumerated() {
            let expected = counts.reduce(0, +) / 16
            let chi2 = counts.reduce(0) { $0 + ($1 - expected) * ($1 - expected) / expected }
            XCTAssertLessThan(chi2, 37.7, k == 0 ? "all draws" : "word \(k - 1)")
        }
    }

    /// The same seed gives the same bytes for any chunking and thread count (several blocks, a partial last one),
    /// with whole words (0.3), 16-bit fields (0.5 + 2⁻¹⁰) and 8-bit fields (0.53125) a decision.
    func testRandomPruneIsChunkInvariant() throws {
        let x = pseudoRandom(1601 * 123, seed: 5)
        for density in [0.3, 0.5 + 0x1p-10, 0.53125] {
            for rescale in [false, true] {
                let op = Op.randomPrune(density: density, rescale: rescale, seed: 5, key: 9)
                try assertChunkInvariant(op, [x], shape: [1601, 123])
                try assertChunkInvariant(op, [x], shape: [1601, 123], dtype: .bf16)
            }
            // Holding its operand (a bf16 or f16 task vector) from the norms' pass to the output sweep gives the same
            // bytes.
            for dtype in [DType.bf16, .f16] {
                let held = x.map { DTypeConversion.round($0, to: dtype) }
                try assertChunkInvariant(.randomPrune(density: density, rescale: true, seed: 5, key: 9), [held],
                                         shape: [1601, 123], dtype: dtype, holding: true)
            }
        }
    }

    /// A decision reads 8 bits of a Philox word when `⌈density · 2³²⌉` is a multiple of 2²⁴, 16 when a multiple of
    /// 2¹⁶, else 32; with `f` fields a word, element `32f·g + 8(f·w + b) + l` is kept when field `b` of word `w` of
    /// block `(8g + l, key)` is below `⌈density · 2³²⌉ / 2^(32 − 32/f)`. Checked against the block function for the
    /// kernel's output (ranges of every phase: chunks of 250 rows of 1000 on two threads) and `RandomMask.keeps`.
    func testNarrowFieldsAreTheBlockWordsBits() throws {
        let x = Self.deltas(count: 20_000)
        let rng = Philox4x32(seed: 11)
        for (density, bits) in [(0.53125, 8), (0.5 + 0x1p-10, 16), (0.4, 32), (0.25, 8), (1 - 0x1p-16, 16)] {
            let mask = RandomMask(rng: rng, key: 3, density: density)
            XCTAssertEqual(mask.fieldBits, bits, "density \(density)")
            let fields = 32 / bits, span = 32 * fields
            let threshold = UInt64((density * 0x1p32).rounded(.up)) >> UInt64(32 - bits)
            func expected(_ i: Int) -> Bool {
                let g = i / span, r = i % span, w = r / (8 * fields), b = r / 8 % fields, lane = r % 8
                let counter = UInt64(g * 8 + lane)
                let block = rng.block((UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), 3, 0))
                let word = UInt64([block.0, block.1, block.2, block.3][w])
                return (word >> UInt64(bits * b)) & ((1 << UInt64(bits)) - 1) < threshold
            }
            let kept = x.indices.map { expected($0) ? x[$0] : 0 }
            XCTAssertEqual(try prune(x, density: density, seed: 11, key: 3).map(\.bitPattern), kept.map(\.bitPattern),
                           "density \(density)")
            for i in [0, 7, 8, 31, 32, 127, 128, 129, 1000, 19_999] {
                XCTAssertEqual(mask.keeps(i), expected(i), "density \(density), element \(i)")
            }
            for range in [0..<100, 5..<6, 13..<77, 31..<33, 64..<200, 127..<385, 1000..<1003, 7..<135] {
                var flags = [UInt32](repeating: 7, count: range.count)
                flags.withUnsafeMutableBufferPointer { mask.fill(range, into: $0.baseAddress!) }
                XCTAssertEqual(flags, range.map { expected($0) ? .max : 0 }, "density \(density), \(range)")
            }
        }
    }

    func testDensityZeroKeepsNothingAndDensityOneEverything() throws {
        let x = Self.deltas(count: 1000)
        XCTAssertEqual(try prune(x, density: 0, rescale: true), [Float](repeating: 0, count: 1000))
        XCTAssertEqual(try prune(x, density: 1, rescale: true).map(\.bitPattern), x.map(\.bitPattern))
    }

    /// A zero tensor has vanishing norms: nothing is rescaled (no 0/0).
    func testZeroTensorStaysZeroWithRescaling() throws {
        let zero = [Float](repeating: 0, count: 3000)
        XCTAssertEqual(try prune(zero, density: 0.5, rescale: true), zero)
    }

    /// The kernel's state stays within the planner's bound of it.
    func testStateStaysWithinThePlannedBound() throws {
        try assertStateMatchesDeclaredCost(.randomPrune(density: 0.3, rescale: true, seed: 1, key: 2), operands: 1,
                                          shape: [1601, 123], chunkRows: 100)
        try assertStateMatchesDeclaredCost(.randomPrune(density: 0.3, rescale: true, seed: 1, key: 2), operands: 1,
                                          shape: [1601, 123], chunkRows: 100, dtype: .bf16, holding: true)
    }

    /// The output sweep applies kept decisions straight from their bits (`KeepBits.apply`): element by element
    /// `R((kept ? x : 0) · factor)`, for ranges that start and end inside a byte of bits, with NaN, infinities,
    /// subnormals and values that round up, in bf16, f16 and f32.
    func testKeptBitsApplyTheirDecisions() {
        let n = 203
        let special: [Float] = [.nan, .infinity, -.infinity, 1e-40, -0.0, 65504, 3.0e38, 1.00390625]
        var x = pseudoRandom(n, seed: 31).map { $0 * 7 }
        for (k, v) in special.enumerated() { x[5 + 9 * k] = v }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let flags: [UInt32] = (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 40 & 1 == 1 ? .max : 0
        }
        let memory = MemoryAccount()
        let kept = KeepBits(elementCount: n, memory: memory)
        flags.withUnsafeBufferPointer { kept.store(0..<n, from: $0.baseAddress!) }
        for factor: Float in [1.8867924, 1, 0.5] {
            for range in [0..<n, 3..<n - 2, 13..<14, 9..<17] {
                func check<R: LaneRounding>(_: R.Type, _ dtype: DType) {
                    var out = [Float](repeating: 42, count: n)
                    x.withUnsafeBufferPointer { xs in
                        out.withUnsafeMutableBufferPointer {
                            kept.apply(R.self, FloatOperand(x: xs.baseAddress!), range, factor: factor, into: $0.baseAddress!)
                        }
                    }
                    for i in 0..<n {
                        let expected = range.contains(i)
                            ? DTypeConversion.round((flags[i] != 0 ? x[i] : 0) * factor, to: dtype) : 42
                        XCTAssertEqual(out[i].bitPattern, expected.bitPattern,
                                       "\(dtype), factor \(factor), range \(range), element \(i): x \(x[i])")
                    }
                }
                check(BF16Rounding.self, .bf16)
                check(F16Rounding.self, .f16)
                check(NoRounding.self, .f32)
                // A held plane of the dtype's values read in place gives the bits its f32 values give.
                func checkPlane<R: HalfLaneRounding>(_: R.Type, _ dtype: DType) {
                    let values = x.map { DTypeConversion.round($0, to: dtype) }
                    var plane = [UInt16](repeating: 0, count: n)
                    var fromPlane = [Float](repeating: 42, count: n), fromFloats = fromPlane
                    values.withUnsafeBufferPointer { xs in
                        plane.withUnsafeMutableBufferPointer { R.pack(xs.baseAddress!, into: $0.baseAddress!, 0..<n) }
                        fromFloats.withUnsafeMutableBufferPointer {
                            kept.apply(R.self, FloatOperand(x: xs.baseAddress!), range, factor: factor, into: $0.baseAddress!)
                        }
                    }
                    plane.withUnsafeBufferPointer { p in
                        fromPlane.withUnsafeMutableBufferPointer {
                            kept.apply(R.self, HeldOperand.Plane<R>(p: p.baseAddress!), range, factor: factor,
                                       into: $0.baseAddress!)
                        }
                    }
                    XCTAssertEqual(fromPlane.map(\.bitPattern), fromFloats.map(\.bitPattern),
                                   "\(dtype), factor \(factor), range \(range)")
                }
                checkPlane(BF16Rounding.self, .bf16)
                checkPlane(F16Rounding.self, .f16)
            }
        }
    }

    /// Decisions stored part by part (parts that start and end inside a byte, parts of 32 and more from a byte
    /// boundary or not, one of a single element) are the bits of each element's flag: every element reads back as
    /// kept exactly when its flag says so.
    func testKeptBitsStoredInPartsReadBackTheirFlags() {
        let n = 301
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        let flags: [UInt32] = (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 40 & 1 == 1 ? .max : 0
        }
        let ones = [Float](repeating: 1, count: n)
        for bounds in [[0, n], [0, 5, 37, 38, 100, 131, 167, 203, n], [0, 8, 40, 72, 73, 200, 264, n], [0, 31, 33, 97, n]] {
            let kept = KeepBits(elementCount: n, memory: MemoryAccount())
            flags.withUnsafeBufferPointer { f in
                for (lower, upper) in zip(bounds, bounds.dropFirst()) {
                    kept.store(lower..<upper, from: f.baseAddress! + lower)
                }
            }
            var out = [Float](repeating: 42, count: n)
            ones.withUnsafeBufferPointer { xs in
                out.withUnsafeMutableBufferPointer {
                    kept.apply(NoRounding.self, FloatOperand(x: xs.baseAddress!), 0..<n, factor: 1, into: $0.baseAddress!)
                }
            }
            XCTAssertEqual(out, flags.map { $0 != 0 ? 1 : 0 }, "parts \(bounds)")
        }
    }
}
