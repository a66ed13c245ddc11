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
final class MultislerpHalfPrecisionChunkKernel<R: LaneRounding>: ChunkKernel {
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

    /// `weights`: one per operand (the rounded, normalized weights); `R` rounds to `context.dtype`.
    init(weights: [Double], eps: Double, context: KernelContext) {
        self.context = context
        self.weights = weights.map { Float($0) }
        self.eps = Float(eps)
        models = weights.count
    }

    func beginPass() -> Bool {
        guard factors == nil, !linear, pass < 3 else { return false }
        pass += 1
        let n = context.elementCount
        switch pass {
        case 0: norms2 = (0..<models).map { _ in .init(length: n, dtype: context.dtype) }
        case 2: sums = (0..<models).map { _ in .init(length: n) }
        default: norms2 = [.init(length: n, dtype: context.dtype)]
        }
        if pass > 0 {
            scratch = context.memory.allocate(Float.self, count: TorchHalfReductions.tile(elementCount: n) * (pass == 2 ? models : 1))
        }
        return true
    }

    // The executor calls kernels through `ChunkKernel`, which reaches a generic class's unspecialized methods;
    // `@_specialize` gives each method a bf16 and an f16 body that the generic entry dispatches to, so that `R.round`
    // inlines into the vector loops (without it, a third of a bf16 multislerp's time was the rounding's witness call).
    @_specialize(where R == BF16Rounding)
    @_specialize(where R == F16Rounding)
    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let (pass, models, range) = (self.pass, self.models, operands.range)
        if pass == 0 {
            TorchHalfReductions.feed(&norms2, p.inputs.map { $0 + range.lowerBound }, count: range.count,
                                     parallel: context.parallel)
            return
        }
        guard let scratch else { return }
        let terms = Terms(inputs: p.inputs, weights: weights, divisors: divisors, meanNorm: meanNorm, dots: dots)
        let capacity = TorchHalfReductions.tile(elementCount: context.elementCount), parallel = context.parallel
        TorchHalfReductions.inTiles(range, scratch: scratch.pointer, capacity: capacity,
                                    parallel: context.parallel) { part, tileStart, out in
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: models) { buffer in
                let u = buffer.baseAddress!
                var i = part.lowerBound
                while i < part.upperBound {
                    let lanes = min(8, part.upperBound - i)
                    let mean = terms.mean(i, lanes, units: u)
                    switch pass {
                    case 1: LaneConversions.store(mean, out, i - tileStart, lanes)
                    case 2:
                        let m = terms.direction(mean)
                        for k in 0..<models {
                            LaneConversions.store(R.round(u[k] * m), out + k * capacity, i - tileStart, lanes)
                        }
                    default:
                        LaneConversions.store(terms.tangent(units: u, terms.direction(mean)), out, i - tileStart, lanes)
                    }
                    i += lanes
                }
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
        let terms = Terms(inputs: p.inputs, weights: weights, divisors: divisors, meanNorm: meanNorm, dots: dots)
        let (linear, weights) = (self.linear, self.weights)
        let (c, s, a) = factors ?? (0, 0, 0)
        let models = self.models
        context.parallel.forEachBlock(in: operands.range) { range in
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: models) { buffer in
                let u = buffer.baseAddress!
                var i = range.lowerBound
                while i < range.upperBound {
                    let lanes = min(8, range.upperBound - i)
                    let v: SIMD8<Float>
                    if linear {
                        let x0 = LaneConversions.load(p.inputs[0], i, lanes), x1 = LaneConversions.load(p.inputs[1], i, lanes)
                        v = R.round(R.round(x0 * SIMD8(repeating: weights[0])) + R.round(x1 * SIMD8(repeating: weights[1])))
                    } else {
                        let m = terms.direction(terms.mean(i, lanes, units: u))
                        let tangent = terms.tangent(units: u, m)
                        v = R.round(R.round(R.round(m * SIMD8(repeating: c)) + R.round(tangent * SIMD8(repeating: s)))
                                    * SIMD8(repeating: a))
                    }
                    LaneConversions.store(v, p.output, i, lanes)
                    i += lanes
                }
            }
        }
    }

    /// The per-element quantities of steps 1–4, eight elements at a time (elements `i ..< i + lanes`; the other
    /// lanes unspecified), from the scalars known so far.
    private struct Terms: @unchecked Sendable {
        let inputs: [UnsafePointer<Float>]
        let weights: [Float]
        let divisors: [Float]
        let meanNorm: Float
        let dots: [Float]

        /// `u_k = R(x_k / d_k)` into `u[k]`, and `mean = R(Σ_k R(u_k·w_k))` (summed in f32 in model order).
        @inline(__always)
        func mean(_ i: Int, _ lanes: Int, units u: UnsafeMutablePointer<SIMD8<Float>>) -> SIMD8<Float> {
            var sum = SIMD8<Float>()
            for k in 0..<weights.count {
                u[k] = R.round(LaneConversions.load(inputs[k], i, lanes) / SIMD8(repeating: divisors[k]))
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
}

extension Multislerp {
    /// Bytes `MultislerpHalfPrecisionChunkKernel` holds in its four passes: none, then a tile of f32 terms
    /// (`TorchHalfReductions.tile` elements; one per model in pass 2).
    static func halfPrecisionCost(elementCount n: Int, models: Int) -> KernelCost {
        let tile = TorchHalfReductions.tile(elementCount: n) * 4
        return KernelCost(passBytes: [0, tile, tile * models, tile])
    }
}
