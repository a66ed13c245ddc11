import IR

/// SCE's final mix (mergekit 0.1.5 `sce_merge`): task vectors weighted by their mean square energy.
public enum SCEMergeKernel {
    /// Per-input weights: mean of squares over the whole tensor, normalized to sum to 1
    /// (equal weights when the total is below 1e-6).
    public static func weights(_ tvs: [TensorBuffer], parallel: Parallel) -> [Double] {
        let n = tvs[0].count
        let p = SharedPointers(inputs: tvs.map { UnsafePointer($0.pointer) }, output: tvs[0].pointer)
        let m = tvs.count
        let squares = parallel.squaredNorms(p, count: n)
        withExtendedLifetime(tvs) {}
        let means = squares.map { n > 0 ? $0 / Double(n) : 0 }
        let total = means.reduce(0, +)
        if abs(total) < 1e-6 { return [Double](repeating: 1 / Double(m), count: m) }
        return means.map { $0 / total }
    }

    /// `operands[0]` is the elected sign (±1); the rest are task vectors. Sums `w[k]·tv[k]` over the task
    /// vectors whose sign equals the elected one and divides by their weights (clamped to ≥ 1e-6).
    public static func merge(_ operands: [TensorBuffer], dtype: DType, parallel: Parallel) -> TensorBuffer {
        let w = weights(Array(operands.dropFirst()), parallel: parallel)
        return ElementwiseKernels.map(operands, dtype: dtype, parallel: parallel) { p, i in
            let sign = p.inputs[0][i]
            var sum = 0.0
            var divisor = 0.0
            for k in 0..<w.count {
                let x = p.inputs[k + 1][i]
                if x != 0, (x > 0) == (sign > 0) {
                    sum += w[k] * Double(x)
                    divisor += w[k]
                }
            }
            return Float(sum / max(divisor, 1e-6))
        }
    }
}
