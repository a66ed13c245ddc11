/// TIES sign consensus: elect a sign per element, then merge only the task vectors that agree with it.
enum SignConsensusKernels {
    /// +1 where `Σ w[k]·x[k] ≥ 0`, else −1.
    @inline(__always)
    static func elect(_ p: SharedPointers, weights w: [Double], _ i: Int) -> Float {
        var s = 0.0
        for k in 0..<w.count { s += w[k] * Double(p.inputs[k][i]) }
        return s >= 0 ? 1 : -1
    }

    /// `inputs[0]` is the elected sign; the rest are task vectors with weights `w`.
    @inline(__always)
    static func merge(_ p: SharedPointers, weights w: [Double], normalize: Bool, lambda: Double, _ i: Int) -> Float {
        let sign = Double(p.inputs[0][i])
        var sum = 0.0
        var divisor = 0.0
        for k in 0..<w.count {
            let weighted = w[k] * Double(p.inputs[k + 1][i])
            if weighted != 0, (weighted > 0) == (sign > 0) {
                sum += weighted
                divisor += w[k]
            }
        }
        if normalize { sum /= divisor == 0 ? 1 : divisor }
        return Float(sum * lambda)
    }
}
