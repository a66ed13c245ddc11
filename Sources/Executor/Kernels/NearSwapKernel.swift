import IR

/// NearSwap (mergekit 0.1.5): moves the base toward the other model only where the two are already close.
public enum NearSwapKernel {
    /// `w·b + (1 − w)·a` with `w = clamp(t / max(|a − b|, 1e-6), 0, 1)`; `a` is the base.
    public static func merge(t: Double, base a: TensorBuffer, other b: TensorBuffer, dtype: DType,
                             parallel: Parallel) -> TensorBuffer {
        ElementwiseKernels.map([a, b], dtype: dtype, parallel: parallel) { p, i in
            let x = Double(p.inputs[0][i])
            let y = Double(p.inputs[1][i])
            let w = min(1, max(0, t / max(abs(x - y), 1e-6)))
            return Float(w * y + (1 - w) * x)
        }
    }
}
