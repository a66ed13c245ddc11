/// NearSwap (mergekit 0.1.5): moves the base toward the other model only where the two are already close.
enum NearSwapKernel {
    /// `w·b + (1 − w)·a` with `w = clamp(t / max(|a − b|, 1e-6), 0, 1)`; `a = inputs[0]` is the base.
    @inline(__always)
    static func merge(t: Double, _ p: SharedPointers, _ i: Int) -> Float {
        let x = Double(p.inputs[0][i])
        let y = Double(p.inputs[1][i])
        let w = min(1, max(0, t / max(abs(x - y), 1e-6)))
        return Float(w * y + (1 - w) * x)
    }
}
