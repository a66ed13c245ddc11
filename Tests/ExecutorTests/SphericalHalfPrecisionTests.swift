@testable import Executor
import Checkpoint
import IR
import XCTest

/// nuslerp, multislerp and SCE's mix in bf16 against PyTorch, and the half-precision reductions they use. The expected bit
/// patterns are torch 2.15's (`ATEN_CPU_CAPABILITY=avx2`, one thread): mergekit 0.1.5's `nuslerp` and the body of
/// its `multislerp` run on the same `pseudoRandom` inputs (task vectors of fine-tunes `base + 0.01·r₂…₄` over
/// `base = 0.1·r₁`, every tensor bf16), and `torch.norm` of rows chosen because an f64 sum rounded once gives a
/// different result there.
final class SphericalHalfPrecisionTests: XCTestCase {
    /// Three bf16 task vectors of 32 elements.
    func taskVectors() -> [[Float]] {
        let n = 32
        let base = pseudoRandom(n, seed: 1).map { DTypeConversion.round($0 * Float(0.1), to: .bf16) }
        return (0..<3).map { k in
            zip(base, pseudoRandom(n, seed: UInt64(k + 2))).map { b, r in
                DTypeConversion.round(DTypeConversion.round(b + r * Float(0.01), to: .bf16) - b, to: .bf16)
            }
        }
    }

    func bits(_ x: [Float]) -> [UInt16] { x.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) } }

    func assertNuslerp(_ axis: SlerpAxis, _ expected: [UInt16], file: StaticString = #filePath, line: UInt = #line) throws {
        for (chunkRows, threads) in [(1, 1), (4, 1), (2, 2)] {
            let out = try runChunked(.nuslerp(t: 0.7, axis: axis), Array(taskVectors()[0..<2]), shape: [4, 8],
                                     dtype: .bf16, threads: threads, chunkRows: chunkRows)
            XCTAssertEqual(bits(out), expected, "\(axis), \(chunkRows) rows per chunk, \(threads) threads",
                           file: file, line: line)
        }
    }

    func testNuslerpFlattenedMatchesTorch() throws {
        try assertNuslerp(.flattened, [0x3b83, 0x3c12, 0xbc2f, 0x3af8, 0x3b94, 0x3b83, 0x3bf2, 0x3b0a, 0xbb7d, 0x3b55, 0x3b5a, 0x3c22, 0xbb8e, 0xbb41, 0xbc15, 0x3ba9, 0xbc26, 0xbb35, 0x3bd0, 0xba91, 0xbc28, 0xbab7, 0xb9d9, 0x3bd7, 0xb901, 0x3bf5, 0xb9dd, 0x3b6b, 0x3aad, 0x3c18, 0xbb6a, 0x38d9])
    }

    func testNuslerpRowsMatchTorch() throws {
        try assertNuslerp(.lastDim, [0x3b71, 0x3c04, 0xbc1c, 0x3ad8, 0x3b87, 0x3b67, 0x3bdd, 0x3afd, 0xbb83, 0x3b5d, 0x3b61, 0x3c2b, 0xbb98, 0xbb51, 0xbc1d, 0x3bb6, 0xbc1f, 0xbb2f, 0x3bca, 0xba85, 0xbc21, 0xbaa7, 0xb9bc, 0x3bce, 0x3881, 0x3c03, 0xba05, 0x3b81, 0x3acb, 0x3c23, 0xbb77, 0x3919])
    }

    func testNuslerpColumnsMatchTorch() throws {
        try assertNuslerp(.firstDim, [0x3b8d, 0x3c30, 0xbc38, 0x3ae9, 0x3b88, 0x3b74, 0x3bee, 0x3af7, 0xbb85, 0x3b69, 0x3b5f, 0x3c1b, 0xbb78, 0xbb32, 0xbc12, 0x3b8d, 0xbc37, 0xbb4b, 0x3bd8, 0xba7d, 0xbc17, 0xbaa1, 0xb9c2, 0x3bb9, 0x3901, 0x3c14, 0xb9fa, 0x3b5c, 0x3a85, 0x3c0e, 0xbb69, 0x3828])
    }

    func testMultislerpMatchesTorch() throws {
        let expected: [UInt16] = [0xba30, 0x3ba9, 0xbbee, 0x3b1b, 0x3baf, 0x3b9b, 0x3b5e, 0x3b28, 0x3a8a, 0xbaeb, 0xbb02, 0x3bc5, 0xbba2, 0xbb67, 0xbc3b, 0x3bc1, 0xbc4c, 0x3b1a, 0x3b02, 0xbbed, 0xbc4d, 0xbbf6, 0xba33, 0x3c06, 0x3bba, 0x3b5e, 0xb9f1, 0x3b98, 0x3bf5, 0x3bb1, 0x3ac1, 0xb98e]
        for (chunkRows, threads, holding) in [(1, 1, false), (4, 2, false), (1, 1, true), (3, 2, true)] {
            // The weights 0.5, 0.3, 0.2 normalized in bf16, as the planner hands them over.
            let out = try runChunked(.multislerp(weights: [0.5, 0.30078125, 0.2001953125], eps: 1e-8), taskVectors(),
                                     shape: [4, 8], dtype: .bf16, threads: threads, chunkRows: chunkRows,
                                     operandDType: holding ? .bf16 : .f32, holding: holding)
            XCTAssertEqual(bits(out), expected, "\(chunkRows) rows per chunk, \(threads) threads, holding: \(holding)")
        }
    }

    /// Two antipodal operands of different norms: the mean vanishes and the bf16 kernel falls back to linear
    /// interpolation of the operands themselves, also when it holds them (its planes keep the operands, not the unit
    /// vectors, while two models may still fall back).
    func testMultislerpFallsBackToTheOperandsWhenHoldingThem() throws {
        for holding in [false, true] {
            let out = try runChunked(.multislerp(weights: [0.5, 0.5], eps: 1e-8), [[2, 1], [-1, -0.5]], shape: [2],
                                     dtype: .bf16, operandDType: holding ? .bf16 : .f32, holding: holding)
            XCTAssertEqual(out, [0.5, 0.25], "holding: \(holding)")
        }
    }

    /// The bf16 passes over held planes (in C where the processor has AVX2, `CMultislerp`) give the bits of the
    /// Swift lanes that read the operands: 3 to 8 models (and 9, where both are Swift lanes), whole eights and tails
    /// of fewer than eight, magnitudes from 2⁻³⁰ to 2³⁰ with some of bf16's subnormals, and tensors with +∞, a
    /// signalling NaN, a negative NaN (the whole result is NaN, its sign and payload those the operations pass on).
    func testMultislerpHeldPlanesGiveTheOperandLanesBits() throws {
        func r(_ x: Float) -> Float { DTypeConversion.round(x, to: .bf16) }
        for models in [3, 4, 5, 8, 9] {
            let total = Float(models * (models + 1) / 2)
            let weights: [Double] = (1...models).map { Double(r(Float($0) / total)) }
            for shape in [[5, 37], [48, 64]] {
                let n = shape.reduce(1, *)
                var xs: [[Float]] = (0..<models).map { (k: Int) -> [Float] in
                    let values = pseudoRandom(n, seed: UInt64(40 + k))
                    return values.indices.map { (i: Int) -> Float in
                        let scale = Float(sign: .plus, exponent: (i * 7 + k) % 61 - 30, significand: 1)
                        return r(values[i] * scale)
                    }
                }
                for k in 0..<models { xs[k][(3 * k + 1) % n] = Float(bitPattern: 0x0001_0000 << (k % 4)) }
                var specials: [[[Float]]] = [xs]
                for (k, bits) in [(0, 0x7F80_0000), (1, 0x7F81_0000), (2, 0xFFC0_0000)] as [(Int, UInt32)] {
                    var y = xs
                    y[k][n / 2 + k] = Float(bitPattern: bits)
                    specials.append(y)
                }
                for (variant, operands) in specials.enumerated() {
                    let op = Op.multislerp(weights: weights, eps: 1e-8)
                    let lanes = try runChunked(op, operands, shape: shape, dtype: .bf16, threads: 2, chunkRows: 3)
                    let held = try runChunked(op, operands, shape: shape, dtype: .bf16, threads: 2, chunkRows: 3,
                                              operandDType: .bf16, holding: true)
                    XCTAssertEqual(held.map(\.bitPattern), lanes.map(\.bitPattern),
                                   "\(models) models, shape \(shape), variant \(variant)")
                    if variant == 0 { XCTAssertFalse(held.contains(where: \.isNaN), "\(models) models, \(shape)") }
                }
            }
        }
    }

    /// SCE's mix in bf16 (`sce_merge` after its mask: the elected sign, then three task vectors): torch's bits for
    /// mergekit's `sce_weight` and weighted, erased mean of the same task vectors.
    func testSCEMixMatchesTorch() throws {
        let tvs = taskVectors()
        let sign: [Float] = (0..<32).map { i in tvs.reduce(Float(0)) { $0 + $1[i] } >= 0 ? 1 : -1 }
        let expected: [UInt16] = [0xbb8f, 0x3bb4, 0xbc01, 0x3afd, 0x3ba4, 0x3b6f, 0x3c10, 0x3b8b, 0xbbe7, 0xbb51, 0xbb73, 0x3bd8, 0xbb8e, 0x3ba1, 0xbbeb, 0x3bb0, 0xbbee, 0x3ba3, 0x3b90, 0xbc02, 0xbc08, 0xbbf4, 0x3bd0, 0x3ba6, 0x3ba6, 0x3b9b, 0x3b48, 0x3b6d, 0x3bfc, 0x3bdd, 0x3b9d, 0xbb30]
        for (chunkRows, threads) in [(1, 1), (4, 2)] {
            let out = try runChunked(.sceMerge, [sign] + tvs, shape: [4, 8], dtype: .bf16, threads: threads,
                                     chunkRows: chunkRows)
            XCTAssertEqual(bits(out), expected, "\(chunkRows) rows per chunk, \(threads) threads")
        }
    }

    /// Odd shapes (one element, one row, columns fewer than eight lanes, rows not a multiple of sixteen long),
    /// a NaN and a zero vector give the same bytes for every chunking and thread count, in bf16 and f16; a NaN
    /// makes the whole vector NaN (its norm is NaN), as in mergekit.
    func testOddShapesNaNAndZerosAreChunkInvariant() throws {
        for dtype in [DType.bf16, .f16] {
            for shape in [[1], [1, 1], [3, 5], [7, 37], [40, 3]] {
                let n = shape.reduce(1, *)
                let xs = (1...3).map { k in pseudoRandom(n, seed: UInt64(k)).map { DTypeConversion.round($0, to: dtype) } }
                for axis in [SlerpAxis.flattened, .lastDim, .firstDim] {
                    try assertChunkInvariant(.nuslerp(t: 0.3, axis: axis), Array(xs[0..<2]), shape: shape, dtype: dtype)
                }
                try assertChunkInvariant(.multislerp(weights: [0.5, 0.25, 0.25], eps: 1e-8), xs, shape: shape, dtype: dtype,
                                         holding: true)
                try assertChunkInvariant(.multislerp(weights: [0.6, 0.4], eps: 1e-8), Array(xs[0..<2]), shape: shape,
                                         dtype: dtype, holding: true)
                try assertChunkInvariant(.modelStock(filterWise: false), xs, shape: shape, dtype: dtype)
            }
            var withNaN = pseudoRandom(40, seed: 9)
            withNaN[17] = .nan
            let other = pseudoRandom(40, seed: 10), zeros = [Float](repeating: 0, count: 40)
            let out = try runChunked(.nuslerp(t: 0.5, axis: .flattened), [withNaN, other], shape: [40], dtype: dtype)
            XCTAssertTrue(out.allSatisfy(\.isNaN), "\(dtype): one NaN makes the flattened vector NaN")
            let zero = try runChunked(.nuslerp(t: 0.5, axis: .flattened), [zeros, other], shape: [40], dtype: dtype)
            XCTAssertFalse(zero.contains(where: \.isNaN), "\(dtype): a zero vector's norm is clamped to 1e-7")
        }
    }

    /// `torch.norm` of 20,011 elements `0.05·pseudoRandom(seed)` rounded to the dtype: rows where torch's f32 order
    /// and an f64 sum round to different results. Fed whole and in pieces of 1, 5, 16 and 37.
    func testNormTwoFollowsTorchOrder() {
        let cases: [(DType, UInt64, UInt16)] = [(.bf16, 355, 0x4082), (.f16, 110, 0x441b), (.f16, 176, 0x4416), (.f16, 431, 0x4418)]
        for (dtype, seed, expected) in cases {
            let x = pseudoRandom(20_011, seed: seed).map { DTypeConversion.round($0 * Float(0.05), to: dtype) }
            let exact = Float(x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
            XCTAssertNotEqual(halfBits(exact, dtype), expected, "seed \(seed) does not tell the orders apart")
            for piece in [x.count, 1, 5, 16, 37] {
                var norm = TorchHalfReductions.NormTwo(length: x.count, dtype: dtype)
                feed(&norm, x, inPiecesOf: piece)
                XCTAssertEqual(halfBits(norm.sumOfSquares.squareRoot(), dtype), expected, "\(dtype) seed \(seed), pieces of \(piece)")
            }
        }
    }

    /// The streaming row sum equals the batch cascade (`TorchFloat32.cascade` over the folded items, then the
    /// tail and the lanes) for lengths around the cascade's block sizes, fed in pieces.
    func testRowSumStreamsLikeTheBatchCascade() {
        for length in [1, 15, 16, 17, 63, 64, 1000, 4099, 70_001] {
            let x = pseudoRandom(length, seed: UInt64(length)).map { DTypeConversion.round($0, to: .bf16) }
            let expected: Float = x.withUnsafeBufferPointer { p in
                guard length >= 16 else { return TorchFloat32.cascade(p, count: length, width: 1)[0] }
                let vectors = length / 16
                var items = [Float](repeating: 0, count: vectors * 8)
                for j in items.indices {
                    let start: Int = (j / 8) * 16 + j % 8
                    items[j] = p[start] + p[start + 8]
                }
                let lanes = items.withUnsafeBufferPointer { TorchFloat32.cascade($0, count: vectors, width: 8) }
                var total: Float = 0
                for k in (vectors * 16)..<length { total += p[k] }
                for l in 0..<8 { total += lanes[l] }
                return total
            }
            for piece in [length, 3, 16, 100] {
                var sum = TorchHalfReductions.RowSum(length: length)
                feed(&sum, x, inPiecesOf: piece)
                XCTAssertEqual(sum.sum.bitPattern, expected.bitPattern, "length \(length), pieces of \(piece)")
            }
        }
    }

    /// Adds `x` to `reduction` in order, `piece` elements at a time.
    func feed<Reduction: InOrderReduction>(_ reduction: inout Reduction, _ x: [Float], inPiecesOf piece: Int) {
        x.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count {
                let n = min(piece, p.count - i)
                reduction.add(p.baseAddress! + i, count: n)
                i += n
            }
        }
    }

    func halfBits(_ x: Float, _ dtype: DType) -> UInt16 {
        dtype == .bf16 ? UInt16(truncatingIfNeeded: DTypeConversion.round(x, to: .bf16).bitPattern >> 16)
            : Float16(x).bitPattern
    }
}
