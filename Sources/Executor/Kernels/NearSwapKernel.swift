import Checkpoint
import IR

/// NearSwap (mergekit 0.1.5's `nearswap_merge`): moves the base toward the other model only where the two are
/// already close. PyTorch computes it with tensors of the merge dtype, so every step is rounded to that dtype
/// (f32 ops rounded to bf16/f16; f32 merges round to f32 only):
/// `d = |a − b|`, `w = clamp(reciprocal(clamp(d, min: 1e-6)) · t, 0, 1)` (`t / tensor` is `reciprocal() * t` in
/// PyTorch, `t` an f32 scalar, 1e-6 rounded to the dtype), `w·b + (1 − w)·a`. NaN propagates as in `torch.clamp`.
enum NearSwapKernel {
    /// One element `i` (`a = inputs[0]` is the base), rounding every step to `dtype`: the definition the lanes
    /// follow.
    static func merge(t: Double, dtype: DType, _ p: SharedPointers, _ i: Int) -> Float {
        func r(_ v: Float) -> Float { DTypeConversion.round(v, to: dtype) }
        let x = p.inputs[0][i], y = p.inputs[1][i]
        let tiny = r(Float(1e-6))
        let d = abs(r(x - y))
        let floor = d < tiny ? tiny : d
        let q = r(r(1 / floor) * Float(t))
        let w = q < 0 ? 0 : q > 1 ? 1 : q
        return r(r(w * y) + r(r(1 - w) * x))
    }

    /// `merge` for every element of `range` into `p.output`, eight at a time, with `dtype`'s rounding.
    static func merge(t: Double, dtype: DType, _ p: SharedPointers, _ range: Range<Int>) {
        switch dtype {
        case .bf16: merge(BF16Rounding.self, t: t, dtype: dtype, p, range)
        case .f16: merge(F16Rounding.self, t: t, dtype: dtype, p, range)
        default: merge(NoRounding.self, t: t, dtype: dtype, p, range)
        }
    }

    @inline(__always)
    private static func merge<R: LaneRounding>(_: R.Type, t: Double, dtype: DType, _ p: SharedPointers,
                                               _ range: Range<Int>) {
        typealias F = SIMD8<Float>
        let a = p.inputs[0], b = p.inputs[1], o = p.output
        let tiny = F(repeating: DTypeConversion.round(Float(1e-6), to: dtype)), ts = F(repeating: Float(t))
        let zero = F(), one = F(repeating: 1)
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: F.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: F.self)
            let diff = R.round(x - y)
            let d = LaneConversions.magnitude(diff)
            // Selections keep NaN, as torch.clamp does.
            let floor = d.replacing(with: tiny, where: d .< tiny)
            let q = R.round(R.round(one / floor) * ts)
            let w = q.replacing(with: zero, where: q .< zero).replacing(with: one, where: q .> one)
            let m = R.round(R.round(w * y) + R.round(R.round(one - w) * x))
            UnsafeMutableRawPointer(o + i).storeBytes(of: m, as: F.self)
            i += 8
        }
        while i < range.upperBound {
            o[i] = merge(t: t, dtype: dtype, p, i)
            i += 1
        }
    }
}
