import CMultislerp
import Foundation
import IR

/// Multi-SLERP on a bf16 or f16 merge, as mergekit 0.1.5's `multislerp` computes it on tensors of that dtype: every
/// elementwise op in f32 rounded to the dtype (`R`), every sum accumulated in f32 and rounded once. With `x_k`
/// the operands (task vectors when there is a base), `w_k` the weights (already tensors of the dtype, normalized
/// by the planner) and `ε` the `eps` parameter, over the flattened tensor:
///
/// 1. `n_k = R(√Σx_k²)` and `d_k = R(n_k + ε)`; the unit vectors `u_k = R(x_k / d_k)` (pass 0). Every norm is
///    `TorchHalfReductions.NormTwo`, every sum over the tensor `TorchHalfReductions.RowSum`.
/// 2. `mean = R(Σ_k R(u_k·w_k))` (the sum over models in model order, f32), `‖mean‖ = R(√Σmean²)` (pass 1). Below
///    `R(ε)`: two models interpolate linearly, `R(R(x₀·w₀) + R(x₁·w₁))`; more is an error, as in mergekit.
/// 3. `m = R(mean / ‖mean‖)`, `dot_k = R(Σ R(u_k·m))` (pass 2).
/// 4. `tr = R(Σ_k R(R(u_k − R(dot_k·m))·w_k))`, `τ = R(R(√Σtr²) + ε)` (pass 3).
/// 5. Each element `R(R(R(m·c) + R(tr·s))·a)` with `c = R(cos τ)`, `s = R(R(sin τ) / τ)` (glibc's `cosf`/`sinf`:
///    PyTorch's scalar path for a one-element tensor) and `a = R(Σ_k R(n_k·w_k))` (`torch.sum`'s order).
///
/// The sums over the tensor follow PyTorch's f32 order on one thread, so neither chunks nor threads change them;
/// the sums over models add in model order (PyTorch's, for up to 15 models).
/// Memory: a tile of terms per model (`TorchHalfReductions.tile` f32 each) in passes 1–3.
///
/// Holding its operands (`KernelContext.holdsOperands`, granted by the planner when the budget allows,
/// `Multislerp.halfPrecisionCost`), the kernel keeps `models + 1` planes of the tensor in the merge dtype
/// (2 bytes an element each) and reads its operands in pass 0 only: pass 0 stores each `x_k` in plane `k`; pass 1
/// stores `mean` in the last plane and replaces each `x_k` by `u_k` (with two models, whose vanishing mean falls
/// back to the operands, pass 2 does); pass 2 replaces `mean` by `m`; pass 3 replaces `u_0` by `tr`; the output
/// reads `m` and `tr` (or, when the mean vanished, `x_0` and `x_1`). Every held value is already rounded to the
/// dtype, so the bytes are the same; an element of three models then takes 25 roundings and 4 divisions in all
/// instead of 58 and 15, and the operands (loads and task vectors) are computed in one sweep instead of five.
/// In bf16 with three to eight models held, passes 1–3 and the output run in C (`CMultislerp`, AVX2: the same
/// operations in the same order, eight lanes a step without the Swift lanes' per-step dispatch) where the processor
/// has AVX2; the Swift lanes elsewhere (`planeKernels`).
final class MultislerpHalfPrecisionChunkKernel<R: HalfLaneRounding>: ChunkKernel {
    private let context: KernelContext
    private let weights: [Float]
    private let eps: Float
    private let models: Int
    private var pass = -1
    /// The current pass's norms (passes 0, 1, 3) or sums (pass 2), one per model or one.
    private var norms2: [TorchHalfReductions.NormTwo] = []
    private var sums: [TorchHalfReductions.RowSum] = []
    private var scratch: AccountedBuffer<Float>?
    /// `n_k` and `d_k`, after pass 0.
    private var norms: [Float] = [], divisors: [Float] = []
    /// `‖mean‖` after pass 1; `dot_k` after pass 2.
    private var meanNorm: Float = 1
    private var dots: [Float] = []
    /// `(c, s, a)` after pass 3, or nil with `linear` set when the mean vanished.
    private var factors: (Float, Float, Float)?
    private var linear = false
    /// With `context.holdsOperands`: planes `0..<models` (`x_k`, then `u_k`; plane 0 then `tr`) and plane `models`
    /// (`mean`, then `m`), `elementCount` 16-bit values each, from pass 0 on (see the type's comment).
    private var held: AccountedBuffer<UInt16>?
    /// Whether passes 1–3 and the output over held planes run in C (`CMultislerp`): bf16, 3 to 8 models, AVX2.
    private let planeKernels: Bool

    /// `weights`: one per operand (the rounded, normalized weights); `R` rounds to `context.dtype`.
    init(weights: [Double], eps: Double, context: KernelContext) {
        self.context = context
        self.weights = weights.map { Float($0) }
        self.eps = Float(eps)
        models = weights.count
        planeKernels = R.self == BF16Rounding.self && MultislerpPlaneKernels.runs(models: models)
    }

    /// Four passes, as declared; after a vanishing mean (`linear`) the last two observe nothing.
    func beginPass() -> Bool {
        guard pass < 3 else { return false }
        pass += 1
        if linear { return true }
        let n = context.elementCount
        switch pass {
        case 0: norms2 = (0..<models).map { _ in .init(length: n, dtype: context.dtype) }
        case 2: sums = (0..<models).map { _ in .init(length: n) }
        default: norms2 = [.init(length: n, dtype: context.dtype)]
        }
        if pass > 0 {
            scratch = context.memory.allocate(Float.self, count: TorchHalfReductions.tile(elementCount: n) * (pass == 2 ? models : 1))
        } else if context.holdsOperands {
            held = context.memory.allocate(UInt16.self, count: (models + 1) * n, zeroed: false)
        }
        return true
    }

    /// The held planes, or nil when the kernel reads its operands in every pass.
    private var planes: Planes? {
        held.map { Planes(base: $0.pointer, stride: context.elementCount, models: models) }
    }

    // The executor calls kernels through `ChunkKernel`, which reaches a generic class's unspecialized methods;
    // `@_specialize` gives each method a bf16 and an f16 body that the generic entry dispatches to, so that `R.round`
    // inlines into the vector loops (without it, a third of a bf16 multislerp's time was the rounding's witness call).
    @_specialize(where R == BF16Rounding)
    @_specialize(where R == F16Rounding)
    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let (pass, models, range, planes) = (self.pass, self.models, operands.range, self.planes)
        if linear { return }
        let inputs = operands.pointers.indices.map { operands.global($0) }
        if pass == 0 {
            TorchHalfReductions.feed(&norms2, inputs.map { $0 + range.lowerBound }, count: range.count,
                                     parallel: context.parallel)
            if let planes {
                let x = SendablePointer(inputs)
                context.parallel.forEachBlock(in: range) { part in
                    for k in 0..<models { planes.store(x.pointer[k], plane: k, part) }
                }
            }
            return
        }
        guard let scratch else { return }
        let terms = Terms(inputs: inputs, planes: planes, weights: weights, divisors: divisors, meanNorm: meanNorm,
                          dots: dots)
        let capacity = TorchHalfReductions.tile(elementCount: context.elementCount), parallel = context.parallel
        let inC = planeKernels && planes != nil
        let (divisors, dots, meanNorm, weights) = (self.divisors, self.dots, self.meanNorm, self.weights)
        TorchHalfReductions.inTiles(range, scratch: scratch.pointer, capacity: capacity,
                                    parallel: context.parallel) { part, tileStart, out in
            if inC, let planes,
               MultislerpPlaneKernels.run(pass: pass, planes, part, out: out + (part.lowerBound - tileStart),
                                          outStride: capacity, divisors: divisors, weights: weights,
                                          meanNorm: meanNorm, dots: dots) {
                return
            }
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: models) { buffer in
                let u = buffer.baseAddress!
                /// Elements `i ..< i + lanes` of the tile.
                @inline(__always) func step(_ i: Int, _ lanes: Int) {
                    switch (pass, planes) {
                    case (1, let planes):
                        let mean = terms.mean(i, lanes, units: u)
                        if let planes {
                            planes.store(mean, plane: models, i, lanes)
                            // Only two models fall back to linear interpolation of the operands.
                            if models != 2 { for k in 0..<models { planes.store(u[k], plane: k, i, lanes) } }
                        }
                        LaneConversions.store(mean, out, i - tileStart, lanes)
                    case (2, let planes?):
                        // The fallback is ruled out: the operands' planes take the units (if pass 1 has not).
                        let m = terms.direction(planes.load(plane: models, i, lanes))
                        planes.store(m, plane: models, i, lanes)
                        for k in 0..<models {
                            let unit: SIMD8<Float>
                            if models == 2 {
                                unit = terms.unit(k, i, lanes)
                                planes.store(unit, plane: k, i, lanes)
                            } else {
                                unit = planes.load(plane: k, i, lanes)
                            }
                            LaneConversions.store(R.round(unit * m), out + k * capacity, i - tileStart, lanes)
                        }
                    case (2, nil):
                        let m = terms.direction(terms.mean(i, lanes, units: u))
                        for k in 0..<models {
                            LaneConversions.store(R.round(u[k] * m), out + k * capacity, i - tileStart, lanes)
                        }
                    case (_, let planes?):
                        for k in 0..<models { u[k] = planes.load(plane: k, i, lanes) }
                        let tangent = terms.tangent(units: u, planes.load(plane: models, i, lanes))
                        planes.store(tangent, plane: 0, i, lanes)
                        LaneConversions.store(tangent, out, i - tileStart, lanes)
                    case (_, nil):
                        LaneConversions.store(terms.tangent(units: u, terms.direction(terms.mean(i, lanes, units: u))),
                                              out, i - tileStart, lanes)
                    }
                }
                LaneConversions.forEachGroup(part, step)
            }
        } consume: { out, count in
            if pass == 2 {
                TorchHalfReductions.feed(&sums, tile: out, capacity: capacity, count: count, parallel: parallel)
            } else {
                norms2[0].add(out, count: count)
            }
        }
    }

    @_specialize(where R == BF16Rounding)
    @_specialize(where R == F16Rounding)
    func endPass() throws(ExecutionError) {
        if linear { return }
        func r(_ x: Float) -> Float { R.round(x) }
        let roots = norms2.map { r($0.sumOfSquares.squareRoot()) }
        scratch = nil
        switch pass {
        case 0:
            norms = roots
            divisors = norms.map { r($0 + eps) }
        case 1:
            meanNorm = roots[0]
            if meanNorm < r(eps) {
                guard models == 2 else { throw .undefinedMerge(value: "", op: "multislerp", Multislerp.zeroMean) }
                linear = true
            }
        case 2:
            dots = sums.map { r($0.sum) }
        default:
            let tau = r(roots[0] + eps)
            var products = (0..<models).map { r(norms[$0] * weights[$0]) }
            var average = TorchHalfReductions.RowSum(length: models)
            products.withUnsafeMutableBufferPointer { average.add($0.baseAddress!, count: models) }
            factors = (r(Foundation.cos(tau)), r(r(Foundation.sin(tau)) / tau), r(average.sum))
        }
        norms2 = []
        sums = []
    }

    @_specialize(where R == BF16Rounding)
    @_specialize(where R == F16Rounding)
    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = operands.shared(output: out)
        let planes = self.planes
        let terms = Terms(inputs: p.inputs, planes: planes, weights: weights, divisors: divisors, meanNorm: meanNorm,
                          dots: dots)
        let (linear, weights) = (self.linear, self.weights)
        let (c, s, a) = factors ?? (0, 0, 0)
        let models = self.models
        let inC = planeKernels && planes != nil && !linear
        context.parallel.forEachBlock(in: operands.range) { range in
            if inC, let planes,
               MultislerpPlaneKernels.output(planes, range, factors: (c, s, a), into: p.output + range.lowerBound) {
                return
            }
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: models) { buffer in
                let u = buffer.baseAddress!
                let (cv, sv, av) = (SIMD8<Float>(repeating: c), SIMD8<Float>(repeating: s), SIMD8<Float>(repeating: a))
                @inline(__always) func step(_ i: Int, _ lanes: Int) {
                    let v: SIMD8<Float>
                    if linear {
                        let x0 = terms.operand(0, i, lanes), x1 = terms.operand(1, i, lanes)
                        v = R.round(R.round(x0 * SIMD8(repeating: weights[0])) + R.round(x1 * SIMD8(repeating: weights[1])))
                    } else if let planes {
                        let m = planes.load(plane: models, i, lanes), tangent = planes.load(plane: 0, i, lanes)
                        v = R.round(R.round(R.round(m * cv) + R.round(tangent * sv)) * av)
                    } else {
                        let m = terms.direction(terms.mean(i, lanes, units: u))
                        let tangent = terms.tangent(units: u, m)
                        v = R.round(R.round(R.round(m * cv) + R.round(tangent * sv)) * av)
                    }
                    LaneConversions.store(v, p.output, i, lanes)
                }
                LaneConversions.forEachGroup(range, step)
            }
        }
    }

    /// The per-element quantities of steps 1–4, eight elements at a time (elements `i ..< i + lanes`; the other
    /// lanes unspecified), from the scalars known so far.
    private struct Terms: @unchecked Sendable {
        /// The operands indexed by global element index (empty when they are held).
        let inputs: [UnsafePointer<Float>]
        /// The held operands, when the kernel holds them (`x_k` until pass 1 or 2 replaces them).
        let planes: Planes?
        let weights: [Float]
        let divisors: [Float]
        let meanNorm: Float
        let dots: [Float]

        /// `x_k`, from the operands or their held plane.
        @inline(__always)
        func operand(_ k: Int, _ i: Int, _ lanes: Int) -> SIMD8<Float> {
            if let planes { return planes.load(plane: k, i, lanes) }
            return LaneConversions.load(inputs[k], i, lanes)
        }

        /// `u_k = R(x_k / d_k)`.
        @inline(__always)
        func unit(_ k: Int, _ i: Int, _ lanes: Int) -> SIMD8<Float> {
            R.round(operand(k, i, lanes) / SIMD8(repeating: divisors[k]))
        }

        /// `u_k = R(x_k / d_k)` into `u[k]`, and `mean = R(Σ_k R(u_k·w_k))` (summed in f32 in model order).
        @inline(__always)
        func mean(_ i: Int, _ lanes: Int, units u: UnsafeMutablePointer<SIMD8<Float>>) -> SIMD8<Float> {
            var sum = SIMD8<Float>()
            for k in 0..<weights.count {
                u[k] = unit(k, i, lanes)
                sum += R.round(u[k] * SIMD8(repeating: weights[k]))
            }
            return R.round(sum)
        }

        /// `m = R(mean / ‖mean‖)`.
        @inline(__always)
        func direction(_ mean: SIMD8<Float>) -> SIMD8<Float> {
            R.round(mean / SIMD8(repeating: meanNorm))
        }

        /// `tr = R(Σ_k R(R(u_k − R(dot_k·m))·w_k))`, summed in f32 in model order.
        @inline(__always)
        func tangent(units u: UnsafeMutablePointer<SIMD8<Float>>, _ m: SIMD8<Float>) -> SIMD8<Float> {
            var sum = SIMD8<Float>()
            for k in 0..<weights.count {
                let along = R.round(SIMD8(repeating: dots[k]) * m)
                sum += R.round(R.round(u[k] - along) * SIMD8(repeating: weights[k]))
            }
            return R.round(sum)
        }
    }

    /// The held planes of a tensor of `stride` elements: `models + 1` of them, one after another, each value the
    /// 16-bit pattern of a value of the merge dtype (`HalfLaneRounding.pack`).
    struct Planes: @unchecked Sendable {
        let base: UnsafeMutablePointer<UInt16>
        let stride: Int
        let models: Int

        /// Elements `i ..< i + lanes` of plane `plane` (the other lanes 0).
        @inline(__always)
        func load(plane: Int, _ i: Int, _ lanes: Int) -> SIMD8<Float> { R.load(base + plane * stride, i, lanes) }

        /// Stores lanes `0 ..< lanes` of `v` (values of the dtype) to elements `i ..< i + lanes` of plane `plane`.
        @inline(__always)
        func store(_ v: SIMD8<Float>, plane: Int, _ i: Int, _ lanes: Int) { R.store(v, base + plane * stride, i, lanes) }

        /// Stores the operand `x` (global indices, values of the dtype) at `range` of plane `plane`.
        @inline(__always)
        func store(_ x: UnsafePointer<Float>, plane: Int, _ range: Range<Int>) {
            R.pack(x, into: base + plane * stride, range)
        }
    }
}

/// The C forms (`CMultislerp`) of `MultislerpHalfPrecisionChunkKernel`'s passes 1–3 and output over held bf16 planes.
private enum MultislerpPlaneKernels {
    /// Whether the processor runs them (AVX2; asked once).
    static let available = mg_multislerp_available() == 1

    /// Whether they run here for `models` operands: AVX2, and 3 to 8 models (two keep the operands for the linear
    /// fallback, which the C passes do not).
    static func runs(models: Int) -> Bool { available && (3...8).contains(models) }

    /// Pass `pass` (1, 2 or 3) over elements `part` (global indices) of `planes`: the f32 terms to `out` (element
    /// `part.lowerBound` at `out[0]`; pass 2's model `k` at `out[k·outStride]`), the planes updated as the kernel's
    /// type comment says. The scalars are those known after the pass before. Returns false, having written
    /// nothing, where the C form refuses (no AVX2, a model count out of 3…8): the Swift lanes then run the part.
    static func run<R: HalfLaneRounding>(pass: Int, _ planes: MultislerpHalfPrecisionChunkKernel<R>.Planes,
                                         _ part: Range<Int>, out: UnsafeMutablePointer<Float>, outStride: Int,
                                         divisors: [Float], weights: [Float], meanNorm: Float, dots: [Float]) -> Bool {
        let (models, stride, start, count) = (Int32(planes.models), Int64(planes.stride), Int64(part.lowerBound),
                                              Int64(part.count))
        let ran: Int32
        switch pass {
        case 1:
            ran = mg_multislerp_units_bf16(planes.base, stride, models, start, count, divisors, weights, out)
        case 2:
            ran = mg_multislerp_direction_bf16(planes.base, stride, models, start, count, meanNorm, out,
                                               Int64(outStride))
        default:
            ran = mg_multislerp_tangent_bf16(planes.base, stride, models, start, count, dots, weights, out)
        }
        return ran == 0
    }

    /// The output over elements `range` (global indices) of `planes` with the factors `(c, s, a)` to `out`
    /// (element `range.lowerBound` at `out[0]`). Returns false, having written nothing, where the C form refuses.
    static func output<R: HalfLaneRounding>(_ planes: MultislerpHalfPrecisionChunkKernel<R>.Planes, _ range: Range<Int>,
                                            factors: (Float, Float, Float), into out: UnsafeMutablePointer<Float>) -> Bool {
        mg_multislerp_output_bf16(planes.base, Int64(planes.stride), Int32(planes.models), Int64(range.lowerBound),
                                  Int64(range.count), factors.0, factors.1, factors.2, out) == 0
    }
}

extension Multislerp {
    /// Bytes `MultislerpHalfPrecisionChunkKernel` holds in its four passes over a tensor of `n` elements: none,
    /// then a tile of f32 terms (`TorchHalfReductions.tile` elements; one per model in pass 2). It offers to hold
    /// its operands (`models + 1` planes of 2 bytes an element from pass 0 on, operands read in pass 0 only) when
    /// every operand is of the merge dtype (`operandsInMergeDType`), so that the planes hold them exactly.
    static func halfPrecisionCost(elementCount n: Int, models: Int, operandsInMergeDType: Bool) -> KernelCost {
        let tile = TorchHalfReductions.tile(elementCount: n) * 4
        let planes = (models + 1) * n * 2
        let holding = OperandHolding(operandPasses: 1, passBytes: [planes, planes + tile, planes + tile * models,
                                                                   planes + tile], sweepBytes: planes)
        return KernelCost(passBytes: [0, tile, tile * models, tile], holding: operandsInMergeDType ? holding : nil)
    }
}
