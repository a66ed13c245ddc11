import Checkpoint
@testable import Executor
import IR
import XCTest

/// The kernels that follow mergekit's operation order on bf16/f16 merges (`task_mix`, `ties_merge` /
/// `sign_elect` / `disjoint_merge`, `linear_mix`), against element-by-element references written from mergekit's
/// code, and shown to differ from one rounding of the exact result.
final class MergeDTypeOrderTests: XCTestCase {
    /// Deterministic values of `dtype` around ±1 (a linear congruential generator), so weighted sums cancel often.
    private func values(_ count: Int, seed: UInt64, _ dtype: DType) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let unit = Float(state >> 40) / Float(1 << 24)          // [0, 1)
            return DTypeConversion.round((unit - 0.5) * 4, to: dtype)
        }
    }

    private func r(_ x: Float, _ dtype: DType) -> Float { DTypeConversion.round(x, to: dtype) }

    /// `GeneralizedTaskArithmeticMerge` without consensus: `deltas.mul_(weights)`, `sum(dim=0)`, `/= divisor`,
    /// `*= lambda`, every tensor of the merge dtype.
    private func taskMixReference(_ xs: [[Float]], _ w: [Float], normalize: Bool, lambda: Float, _ dtype: DType) -> [Float] {
        (0..<xs[0].count).map { i in
            var sum: Float = 0
            for k in xs.indices { sum += r(xs[k][i] * w[k], dtype) }
            var mixed = r(sum, dtype)
            if normalize {
                var divisor = r(w.reduce(0, +), dtype)
                if abs(divisor) < 1e-8 { divisor = 1 }
                mixed = r(mixed / divisor, dtype)
            }
            return r(lambda == 1 ? mixed : mixed * lambda, dtype)
        }
    }

    /// The same with `get_mask(method="sum")`: the sign of the rounded sum, the agreeing terms and weights.
    private func tiesReference(_ xs: [[Float]], _ w: [Float], normalize: Bool, lambda: Float, _ dtype: DType) -> [Float] {
        (0..<xs[0].count).map { i in
            let weighted = xs.indices.map { r(xs[$0][i] * w[$0], dtype) }
            let elected: Float = r(weighted.reduce(0, +), dtype) >= 0 ? 1 : -1
            var sum: Float = 0, divisor: Float = 0
            for k in xs.indices where weighted[k] != 0 && (weighted[k] > 0) == (elected > 0) {
                sum += weighted[k]
                divisor += w[k]
            }
            var mixed = r(sum, dtype)
            if normalize {
                divisor = r(divisor, dtype)
                mixed = r(mixed / (divisor == 0 ? 1 : divisor), dtype)
            }
            return r(lambda == 1 ? mixed : mixed * lambda, dtype)
        }
    }

    /// The exact weighted sum rounded once (what `weighted_sum` computes).
    private func roundedOnce(_ xs: [[Float]], _ c: [Double], _ dtype: DType) -> [Float] {
        (0..<xs[0].count).map { i in r(Float(xs.indices.reduce(0.0) { $0 + c[$1] * Double(xs[$1][i]) }), dtype) }
    }

    func testTaskMixRoundsEveryOpInTheMergeDType() throws {
        for dtype in [DType.bf16, .f16] {
            let n = 4096
            let xs = (0..<3).map { values(n, seed: UInt64($0 + 1), dtype) }
            let w = [0.4, 0.3, 0.3].map { r(Float($0), dtype) }
            for (normalize, lambda) in [(false, Float(1)), (true, 1), (true, 0.7)] {
                let op = Op.taskMix(weights: w.map(Double.init), normalize: normalize, lambda: Double(lambda))
                let got = try runChunked(op, xs, shape: [64, 64], dtype: dtype, chunkRows: 5, operandDType: dtype)
                XCTAssertEqual(got, taskMixReference(xs, w, normalize: normalize, lambda: lambda, dtype), "\(dtype) \(op)")
            }
            let plain = try runChunked(.taskMix(weights: w.map(Double.init), normalize: false, lambda: 1), xs,
                                       shape: [n], dtype: dtype, operandDType: dtype)
            XCTAssertNotEqual(plain, roundedOnce(xs, w.map(Double.init), dtype),
                              "rounding each product differs from rounding the exact sum once somewhere")
        }
    }

    func testTaskMixOnF32IsTheF32Order() throws {
        let xs = (0..<3).map { values(1000, seed: UInt64($0 + 7), .f32) }
        let w: [Float] = [0.4, 0.3, 0.3]
        let got = try runChunked(.taskMix(weights: [0.4, 0.3, 0.3], normalize: true, lambda: 1), xs, shape: [1000])
        XCTAssertEqual(got, taskMixReference(xs, w, normalize: true, lambda: 1, .f32))
    }

    func testTiesConsensusFollowsMergekitInTheMergeDType() throws {
        for dtype in [DType.bf16, .f16] {
            let xs = (0..<3).map { values(4096, seed: UInt64($0 + 11), dtype) }
            let w = [0.4, 0.3, 0.3].map { r(Float($0), dtype) }
            let wd = w.map(Double.init)
            for (normalize, lambda) in [(true, Float(1)), (false, 1), (true, 1.3)] {
                let expected = tiesReference(xs, w, normalize: normalize, lambda: lambda, dtype)
                let fused = try runChunked(.tiesMerge(electWeights: wd, weights: wd, normalize: normalize, lambda: Double(lambda)),
                                           xs, shape: [64, 64], dtype: dtype, chunkRows: 3, operandDType: dtype)
                XCTAssertEqual(fused, expected, "\(dtype) normalize=\(normalize) lambda=\(lambda)")
                let sign = try runChunked(.signElect(weights: wd), xs, shape: [64, 64], dtype: dtype, operandDType: dtype)
                let twoSteps = try runChunked(.disjointMerge(weights: wd, normalize: normalize, lambda: Double(lambda)),
                                              [sign] + xs, shape: [64, 64], dtype: dtype, operandDType: dtype)
                XCTAssertEqual(twoSteps, expected, "\(dtype): sign_elect then disjoint_merge")
            }
        }
    }

    /// bf16 TIES on two or three task vectors runs sixteen lanes at a time in C (`mg_ties_merge_bf16`, AVX-512) over
    /// a block's whole sixteens and eight at a time in Swift over the rest: both give the same bits, NaN, ±∞, ±0 and
    /// subnormals included (a NaN term never agrees), normalized or not. One chunk of 75 rows of 15 goes to the C
    /// kernel where the processor has it (1120 elements, the last 5 to Swift); chunks of one row never do.
    func testTiesInSixteenLanesIsTiesInEight() throws {
        let n = 75 * 15
        let specials: [Float] = [0, -0.0, .nan, .infinity, -.infinity, Float(bitPattern: 0x0001_0000),
                                 Float(bitPattern: 0xFF7F_0000), 1, -1]
        for models in [2, 3] {
            var xs = (0..<models).map { values(n, seed: UInt64($0 + 31), .bf16) }
            for (i, s) in specials.enumerated() {
                for (j, t) in specials.enumerated() { xs[0][11 * (i * specials.count + j) % n] = s; xs[1][11 * (i * specials.count + j) % n] = t }
            }
            let w = (models == 2 ? [0.5, 0.5] : [0.4, 0.3, -0.3]).map { Double(r(Float($0), .bf16)) }
            for normalize in [true, false] {
                let op = Op.tiesMerge(electWeights: w, weights: w, normalize: normalize, lambda: 1)
                let sixteens = try runChunked(op, xs, shape: [75, 15], dtype: .bf16, chunkRows: 75, operandDType: .bf16)
                let eights = try runChunked(op, xs, shape: [75, 15], dtype: .bf16, chunkRows: 1, operandDType: .bf16)
                XCTAssertEqual(sixteens.map(\.bitPattern), eights.map(\.bitPattern), "\(models) models, normalize \(normalize)")
                XCTAssertTrue(sixteens.contains { $0 == 0 }, "zero")
                XCTAssertTrue(sixteens.contains { $0.isInfinite }, "infinity")
            }
        }
    }

    /// The bf16 mix without consensus (`task_mix`) in sixteen lanes (C, AVX-512F) gives the eight Swift lanes' bits:
    /// one chunk of 75 rows of 15 against one-row chunks, with NaN, ±∞, ±0 and a subnormal, one to three models,
    /// weights summing to zero (divisor 1), normalized or not, `lambda` 1 or 0.5.
    func testTaskMixInSixteenLanesIsTaskMixInEight() throws {
        let n = 75 * 15
        let specials: [Float] = [0, -0.0, .nan, .infinity, -.infinity, Float(bitPattern: 0x0001_0000), 1, -1]
        for weights in [[0.6], [0.5, -0.5], [0.40234375, 0.30078125, -0.30078125]] {
            var xs = (0..<weights.count).map { values(n, seed: UInt64($0 + 61), .bf16) }
            for (i, v) in specials.enumerated() { xs[i % weights.count][13 * i + 5] = v }
            for normalize in [true, false] {
                for lambda in [1.0, 0.5] {
                    let op = Op.taskMix(weights: weights, normalize: normalize, lambda: lambda)
                    let sixteens = try runChunked(op, xs, shape: [75, 15], dtype: .bf16, chunkRows: 75, operandDType: .bf16)
                    let eights = try runChunked(op, xs, shape: [75, 15], dtype: .bf16, chunkRows: 1, operandDType: .bf16)
                    XCTAssertEqual(sixteens.map(\.bitPattern), eights.map(\.bitPattern),
                                   "weights \(weights), normalize \(normalize), lambda \(lambda)")
                    XCTAssertTrue(sixteens.contains { $0.isNaN } && sixteens.contains { $0.isInfinite })
                }
            }
        }
    }

    func testTiesDivisorOfZeroIsOne() throws {
        // Weights 1 and −1 agreeing on an element: mergekit replaces only an exact zero divisor.
        let xs: [[Float]] = [[1, 2], [-1, -2]]
        let got = try runChunked(.tiesMerge(electWeights: [1, -1], weights: [1, -1], normalize: true, lambda: 1), xs,
                                 shape: [2], dtype: .bf16, operandDType: .bf16)
        XCTAssertEqual(got, [2, 4])
    }

    /// `linear_merge`: f32 weights, `result.addcmul_` (fused) per model, `result.div_(Σ w)`, rounded once.
    func testLinearMixIsMergekitsF32Accumulation() throws {
        for dtype in [DType.bf16, .f16] {
            let n = 4096
            let xs = (0..<3).map { values(n, seed: UInt64($0 + 21), dtype) }
            let w: [Float] = [0.4, 0.3, 0.3]
            let divisor = (w[0] + w[1]) + w[2]
            let expected = (0..<n).map { i in
                r(xs.indices.reduce(Float(0)) { $0.addingProduct(xs[$1][i], w[$1]) } / divisor, dtype)
            }
            let got = try runChunked(.linearMix(weights: w.map(Double.init), normalize: true), xs, shape: [n / 64, 64],
                                     dtype: dtype, chunkRows: 7, operandDType: dtype)
            XCTAssertEqual(got, expected, "\(dtype)")
            XCTAssertNotEqual(got, roundedOnce(xs, [0.4, 0.3, 0.3], dtype),
                              "the f32 accumulator differs from the exact normalized sum rounded once somewhere")
            let unnormalized = try runChunked(.linearMix(weights: [0.4, 0.3, 0.3], normalize: false), xs, shape: [n],
                                              dtype: dtype, operandDType: dtype)
            XCTAssertEqual(unnormalized, (0..<n).map { i in
                r(xs.indices.reduce(Float(0)) { $0.addingProduct(xs[$1][i], w[$1]) }, dtype)
            })
        }
    }

    func testSIMDRoundingEqualsScalarRounding() {
        var state: UInt32 = 12345
        for _ in 0..<20_000 {
            var lanes = SIMD8<Float>()
            for l in 0..<8 {
                state = state &* 1664525 &+ 1013904223
                lanes[l] = Float(bitPattern: state)
            }
            for dtype in [DType.f32, .bf16, .f16] {
                let got = MergeDTypeRounding.round(lanes, to: dtype)
                for l in 0..<8 {
                    let want = DTypeConversion.round(lanes[l], to: dtype)
                    XCTAssertTrue(got[l].bitPattern == want.bitPattern || (got[l].isNaN && want.isNaN),
                                  "\(dtype) \(lanes[l])")
                }
            }
        }
    }
}
