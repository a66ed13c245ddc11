import Checkpoint
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

    /// Masked task vectors of `dtype`: mostly zeros (SCE's variance mask), ±0, exact cancellations (a sum of +0 or
    /// −0 elects +1), a subnormal, and values around ±1 elsewhere.
    private func maskedTaskVectors(_ count: Int, models: Int, _ dtype: DType) -> [[Float]] {
        var xs: [[Float]] = []
        for k in 0..<models {
            let random = pseudoRandom(count, seed: UInt64(40 + k))
            var x = [Float](repeating: 0, count: count)
            for i in 0..<count where (i * 7 + k) % 3 != 0 { x[i] = DTypeConversion.round(random[i], to: dtype) }
            xs.append(x)
        }
        for i in stride(from: 5, to: count, by: 23) {
            xs[0][i] = -xs[1][i]
            if models > 2 { xs[2][i] = i % 2 == 0 ? 0 : -0.0 }
        }
        for i in stride(from: 11, to: count, by: 29) {
            for k in 0..<models { xs[k][i] = k % 2 == 0 ? -0.0 : 0 }
        }
        xs[0][3] = Float(bitPattern: 0x0001_0000)
        return xs
    }

    /// `sce_elect_merge` (the sign elected in the kernel, `SignConsensusFusion`) gives the bytes of `sign_elect`
    /// with weights 1 followed by `sce_merge`, in f32, bf16 and f16, for two and three models, in chunks of 75
    /// rows of 15 (bf16: sixteen lanes in C where the processor has AVX-512F) and of one row (eight Swift lanes and
    /// a tail), on one and two threads.
    func testElectingMixIsTheElectionThenTheMix() throws {
        let shape = [75, 15], n = 75 * 15
        for dtype in [DType.f32, .bf16, .f16] {
            for models in [2, 3] {
                let tvs = maskedTaskVectors(n, models: models, dtype)
                let sign = try runChunked(.signElect(weights: [Double](repeating: 1, count: models)), tvs, shape: shape,
                                          dtype: dtype, operandDType: dtype)
                XCTAssertTrue(sign.allSatisfy { $0 == 1 || $0 == -1 })
                XCTAssertEqual(sign[11], 1, "a sum of zeros elects +1")
                let twoSteps = try runChunked(.sceMerge, [sign] + tvs, shape: shape, dtype: dtype, operandDType: dtype)
                XCTAssertTrue(twoSteps.contains { $0 != 0 } && twoSteps.contains { $0 == 0 })
                for (chunkRows, threads) in [(75, 1), (1, 1), (75, 2), (4, 2)] {
                    let fused = try runChunked(.sceElectMerge(masked: false), tvs, shape: shape, dtype: dtype, threads: threads,
                                               chunkRows: chunkRows, operandDType: dtype)
                    XCTAssertEqual(fused.map(\.bitPattern), twoSteps.map(\.bitPattern),
                                   "\(dtype), \(models) models, \(chunkRows) rows per chunk, \(threads) threads")
                }
            }
        }
    }

    /// `sce_elect_merge(masked)` (`SCEMaskFusion`: the mask multiplied in as the kernel reads each task vector)
    /// gives the bytes of the `mul`s by the mask followed by `sce_elect_merge`, in f32, bf16 and f16, for two and
    /// three models, with a mask keeping about a third of the elements (negative task vectors masked to −0 among
    /// them), in chunks of 75 rows of 15 (bf16: C's lanes where the processor has them) and of one row, on one and two
    /// threads; and a NaN the mask drops still makes the whole result NaN, as the product by 0 does.
    func testMaskedMixIsTheMaskProductsThenTheMix() throws {
        let shape = [75, 15], n = 75 * 15
        let mask = (0..<n).map { i in Float((i * 11) % 3 == 0 ? 1 : 0) }
        for dtype in [DType.f32, .bf16, .f16] {
            for models in [2, 3] {
                let tvs = maskedTaskVectors(n, models: models, dtype)
                let products = try tvs.map { tv in
                    try runChunked(.mul, [tv, mask], shape: shape, dtype: dtype, operandDType: dtype)
                }
                XCTAssertTrue(products[0].contains { $0 == 0 && $0.sign == .minus }, "a masked negative value is −0")
                let unfused = try runChunked(.sceElectMerge(masked: false), products, shape: shape, dtype: dtype,
                                             operandDType: dtype)
                XCTAssertTrue(unfused.contains { $0 != 0 } && unfused.contains { $0 == 0 })
                for (chunkRows, threads) in [(75, 1), (1, 1), (75, 2), (4, 2)] {
                    let fused = try runChunked(.sceElectMerge(masked: true), tvs + [mask], shape: shape, dtype: dtype,
                                               threads: threads, chunkRows: chunkRows, operandDType: dtype)
                    XCTAssertEqual(fused.map(\.bitPattern), unfused.map(\.bitPattern),
                                   "\(dtype), \(models) models, \(chunkRows) rows per chunk, \(threads) threads")
                }
            }
            var tvs = maskedTaskVectors(n, models: 3, dtype)
            tvs[1][1] = .nan
            XCTAssertEqual(mask[1], 0)
            let out = try runChunked(.sceElectMerge(masked: true), tvs + [mask], shape: shape, dtype: dtype,
                                     operandDType: dtype)
            XCTAssertTrue(out.allSatisfy(\.isNaN), "\(dtype)")
        }
    }

    /// Task vectors and masks handed over as packed bf16 planes (`ChunkOperands.planes`, `readsBF16Planes`) give the
    /// bytes of the same operands unpacked into chunk buffers, in the weights' pass and the mix: every operand a plane
    /// (C's sixteens from the planes where the processor has AVX-512F, the rest of each block a tile at a time), some
    /// of them (each plane unpacked into a tile), and none, in chunks of 75 rows of 15 and of 4; masked and unmasked.
    func testPackedPlanesGiveTheUnpackedBytes() throws {
        let shape = [75, 15], n = 75 * 15
        let tvs = maskedTaskVectors(n, models: 3, .bf16)
        let mask = (0..<n).map { i in Float((i * 7) % 4 == 0 ? 1 : 0) }
        for masked in [true, false] {
            let values = masked ? tvs + [mask] : tvs
            let op = Op.sceElectMerge(masked: masked)
            let reference = try runChunked(op, values, shape: shape, dtype: .bf16, chunkRows: 4, operandDType: .bf16)
            let planes = values.map { $0.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) } }
            let subsets: [Set<Int>] = [Set(values.indices), [0, 2], [values.count - 1], []]
            for packed in subsets {
                for chunkRows in [75, 4] {
                    var handed = 0
                    let out = try runWithPlanes(op, values, planes: planes, packed: packed, shape: shape,
                                                chunkRows: chunkRows, handed: &handed)
                    XCTAssertEqual(handed, packed.isEmpty || !SCEMergeChunkKernel.mixesPlanesInC ? 0 : 2,
                                   "the weights' pass and the mix take planes")
                    XCTAssertEqual(out.map(\.bitPattern), reference.map(\.bitPattern),
                                   "masked \(masked), planes \(packed.sorted()), \(chunkRows) rows per chunk")
                }
            }
        }
        let kernel = SCEMergeChunkKernel(models: 3, electing: true, context: KernelContext(
            shape: shape, dtype: .f16, parallel: Parallel(threads: 1), memory: MemoryAccount()))
        XCTAssertFalse(kernel.readsBF16Planes, "an f16 merge reads chunk buffers")
    }

    /// The weights' pass squares in eight lanes (`roundedSquares`): the bits of each product rounded to the dtype
    /// one by one (`DTypeConversion.round`), with and without a mask, for bf16 and f16 values that square past f16's
    /// range, into its subnormals and bf16's, ±0, NaN and ±∞, over counts that are not multiples of eight.
    func testRoundedSquaresAreEachSquareRounded() {
        let specials: [Float] = [300, -300, 1e-4, -3e-5, 1e-20, 0, -0.0, .nan, .infinity, -.infinity, 1.5, -0.75]
        let values = specials + pseudoRandom(45, seed: 9).map { $0 * 4 }
        let mask = values.indices.map { Float($0 % 3 == 1 ? 0 : 1) }
        for dtype in [DType.bf16, .f16] {
            let x = values.map { DTypeConversion.round($0, to: dtype) }
            for masked in [false, true] {
                for count in [x.count, 13, 7] {
                    let expected = (0..<count).map { i -> Float in
                        let v = masked ? x[i] * mask[i] : x[i]
                        return DTypeConversion.round(v * v, to: dtype)
                    }
                    var out = [Float](repeating: 42, count: count)
                    x.withUnsafeBufferPointer { xp in
                        mask.withUnsafeBufferPointer { mp in
                            out.withUnsafeMutableBufferPointer { op in
                                let m = masked ? LaneSource.floats(mp.baseAddress!) : nil
                                let x = LaneSource.floats(xp.baseAddress!)
                                if dtype == .bf16 {
                                    SCEMergeChunkKernel.roundedSquares(BF16Rounding.self, x, mask: m, from: 0,
                                                                       into: op.baseAddress!, count: count)
                                } else {
                                    SCEMergeChunkKernel.roundedSquares(F16Rounding.self, x, mask: m, from: 0,
                                                                       into: op.baseAddress!, count: count)
                                }
                            }
                        }
                    }
                    XCTAssertEqual(out.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern },
                                   expected.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern },
                                   "\(dtype), masked \(masked), \(count) values")
                }
            }
        }
    }

    /// The bf16 mix and election in sixteen lanes (C, AVX-512F) give the eight Swift lanes' bytes: one chunk of 75
    /// rows of 15 against one-row chunks, with NaN, ±∞, ±0 and a subnormal in the elected task vectors.
    func testBF16MixAndElectionInSixteenLanesAreEightLanes() throws {
        let shape = [75, 15], n = 75 * 15
        var tvs = maskedTaskVectors(n, models: 3, .bf16)
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, Float(bitPattern: 0x8001_0000)]
        for (j, x) in specials.enumerated() { tvs[j % 3][97 + 13 * j] = x }
        for weights in [[1.0, 1, 1], [0.40234375, 0.30078125, -0.30078125]] {
            let op = Op.signElect(weights: weights)
            let sixteens = try runChunked(op, tvs, shape: shape, dtype: .bf16, chunkRows: 75, operandDType: .bf16)
            let eights = try runChunked(op, tvs, shape: shape, dtype: .bf16, chunkRows: 1, operandDType: .bf16)
            XCTAssertEqual(sixteens, eights, "election with weights \(weights)")
            XCTAssertTrue(sixteens.contains(1) && sixteens.contains(-1))
        }
        // The mix of finite task vectors (a non-finite one makes the whole result NaN) with a given sign.
        let finite = maskedTaskVectors(n, models: 3, .bf16)
        let sign = (0..<n).map { i in Float(i % 5 == 0 ? -1 : 1) }
        let sixteens = try runChunked(.sceMerge, [sign] + finite, shape: shape, dtype: .bf16, chunkRows: 75,
                                      operandDType: .bf16)
        let eights = try runChunked(.sceMerge, [sign] + finite, shape: shape, dtype: .bf16, chunkRows: 1,
                                    operandDType: .bf16)
        XCTAssertEqual(sixteens.map(\.bitPattern), eights.map(\.bitPattern))
    }

    /// torch 2.15's CPU `mean` of a bf16 tensor sums in f32, divides and rounds once; rounding the sum to bf16 first
    /// (as this kernel did until a new user's trial found it) moves weights wherever the element count is not a power
    /// of two. Task vectors [0.60546875, 1.15625, −1.625] and [−1.8828125, 1.34375, −0.26953125]: f32 sums of the
    /// rounded squares 4.34375 and 5.42431640625, torch's means 1.4453125 and 1.8046875 (1.8125 rounding twice), its
    /// weights 0.4453125 and 0.5546875, and mergekit's `sce_merge` of them (torch 2.15, ATEN_CPU_CAPABILITY=avx2)
    /// −1.890625, 1.265625, −0.87109375.
    func testHalfPrecisionMeansRoundOnceAsTorchDoes() throws {
        XCTAssertEqual(SCEMergeChunkKernel.halfWeights(sums: [4.34375, 5.42431640625], count: 3, dtype: .bf16),
                       [0.4453125, 0.5546875])
        let tvs: [[Float]] = [[0.60546875, 1.15625, -1.625], [-1.8828125, 1.34375, -0.26953125]]
        for op in [Op.sceElectMerge(masked: false), .sceMerge] {
            let operands = op == .sceMerge ? [[-1, 1, -1]] + tvs : tvs
            let out = try runChunked(op, operands, shape: [3], dtype: .bf16, operandDType: .bf16)
            XCTAssertEqual(out, [-1.890625, 1.265625, -0.87109375], "\(op.mnemonic)")
        }
    }

    /// The kernel's state (one sum per task vector and block) stays within the planner's bound of it.
    func testStateStaysWithinThePlannedBound() throws {
        try assertStateMatchesDeclaredCost(.sceMerge, operands: 4, shape: [1601, 123], chunkRows: 100)
        try assertStateMatchesDeclaredCost(.sceElectMerge(masked: false), operands: 3, shape: [1601, 123], chunkRows: 100)
        try assertStateMatchesDeclaredCost(.sceElectMerge(masked: true), operands: 4, shape: [1601, 123], chunkRows: 100)
    }
}
