/// NearSwap (mergekit 0.1.5): moves the base toward the other model only where the two are already close.
enum NearSwapKernel {
    /// `w·b + (1 − w)·a` with `w = clamp(t / max(|a − b|, 1e-6), 0, 1)`; `a = inputs[0]` is the base. In f64,
    /// with Swift's `min`/`max` (so a NaN difference gives `w = 0`).
    @inline(__always)
    static func merge(t: Double, _ p: SharedPointers, _ i: Int) -> Float {
        let x = Double(p.inputs[0][i])
        let y = Double(p.inputs[1][i])
        let w = min(1, max(0, t / max(abs(x - y), 1e-6)))
        return Float(w * y + (1 - w) * x)
    }

    /// `merge` for every element of `range` into `p.output`, eight at a time in f64 vector registers with the
    /// same operations and the same selections (`max(a, b)` is `b >= a ? b : a`, `min(a, b)` is `b < a ? b : a`).
    @inline(__always)
    static func merge(t: Double, _ p: SharedPointers, _ range: Range<Int>) {
        typealias D = SIMD8<Double>
        let a = p.inputs[0], b = p.inputs[1], o = p.output
        let tiny = D(repeating: 1e-6), ts = D(repeating: t), one = D(repeating: 1)
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let x = LaneConversions.wide(a, i), y = LaneConversions.wide(b, i)
            let d = LaneConversions.magnitude(x - y)
            let floor = d.replacing(with: tiny, where: tiny .>= d)
            let q = ts / floor
            let clampedLow = D().replacing(with: q, where: q .>= 0)
            let w = one.replacing(with: clampedLow, where: clampedLow .< 1)
            let m = w * y + (one - w) * x
            UnsafeMutableRawPointer(o + i).storeBytes(of: LaneConversions.narrow(m), as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            o[i] = merge(t: t, p, i)
            i += 1
        }
    }
}
