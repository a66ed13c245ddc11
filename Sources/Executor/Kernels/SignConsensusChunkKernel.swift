import IR

/// TIES sign consensus as tight loops: elect a sign per element, then merge only the task vectors that agree.
final class SignConsensusChunkKernel: ChunkKernel {
    /// Which half of the consensus the kernel computes.
    enum Step {
        /// +1 where `Σ w[k]·x[k] ≥ 0` (in f64, from 0, in operand order), else −1.
        case elect([Double])
        /// `operands[0]` is the elected sign; sums `w[k]·x[k]` of the agreeing task vectors, divides by their
        /// weights when `normalize` (by 1 when none agree), multiplies by `lambda`.
        case merge(weights: [Double], normalize: Bool, lambda: Double)
    }

    private let step: Step
    private let context: KernelContext

    init(_ step: Step, context: KernelContext) {
        self.step = step
        self.context = context
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = operands.shared(output: out)
        let step = self.step
        let dtype = context.dtype
        context.parallel.forEachBlock(in: operands.range) { range in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * range.count) { scratch in
                let sum = scratch.baseAddress!, divisor = sum + range.count
                let start = range.lowerBound
                for j in 0..<(2 * range.count) { scratch[j] = 0 }
                switch step {
                case .elect(let w):
                    for k in 0..<w.count {
                        let x = p.inputs[k] + start, c = w[k]
                        for j in 0..<range.count { sum[j] += c * Double(x[j]) }
                    }
                    let o = p.output + start
                    for j in 0..<range.count { o[j] = sum[j] >= 0 ? 1 : -1 }
                case .merge(let w, let normalize, let lambda):
                    let sign = p.inputs[0] + start
                    for k in 0..<w.count {
                        let x = p.inputs[k + 1] + start, c = w[k]
                        for j in 0..<range.count {
                            let weighted = c * Double(x[j])
                            let agrees = weighted != 0 && (weighted > 0) == (sign[j] > 0)
                            sum[j] += agrees ? weighted : 0
                            divisor[j] += agrees ? c : 0
                        }
                    }
                    let o = p.output + start
                    for j in 0..<range.count {
                        var s = sum[j]
                        if normalize { s /= divisor[j] == 0 ? 1 : divisor[j] }
                        o[j] = Float(s * lambda)
                    }
                }
                DTypeConversion.roundInPlace(p.output + start, count: range.count, to: dtype)
            }
        }
    }
}
