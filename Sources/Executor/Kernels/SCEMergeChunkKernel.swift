import IR

/// SCE's final mix (mergekit 0.1.5 `sce_merge`) in streaming form: `operands[0]` is the elected sign (±1), the
/// rest are task vectors. One pass measures each task vector's mean square over the whole tensor (its weight,
/// normalized); then each element sums `w[k]·tv[k]` over the task vectors whose sign equals the elected one
/// and divides by their weights (clamped to ≥ 1e-6).
final class SCEMergeChunkKernel: ChunkKernel {
    private let context: KernelContext
    private var squares: StreamingSums?
    private var weights: [Double] = []

    init(operands: Int, context: KernelContext) {
        self.context = context
        squares = StreamingSums(elementCount: context.elementCount, width: max(0, operands - 1), memory: context.memory)
    }

    func beginPass() -> Bool { squares != nil }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        squares?.add(operands.range, parallel: context.parallel) { range, acc in
            for k in 1..<p.inputs.count {
                let x = p.inputs[k]
                var s = acc[k - 1]
                for i in range {
                    let v = Double(x[i])
                    s += v * v
                }
                acc[k - 1] = s
            }
        }
    }

    func endPass() throws(ExecutionError) {
        weights = Self.weights(squaredNorms: squares?.totals() ?? [], count: context.elementCount)
        squares = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let w = weights
        context.forEachRoundedBlock(operands, into: out) { p, range in
            for i in range {
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
                p.output[i] = Float(sum / max(divisor, 1e-6))
            }
        }
    }

    /// Per task vector: the mean square (`squaredNorms[k] / count`), normalized to sum to 1; equal weights when
    /// the means add up to less than 1e-6.
    static func weights(squaredNorms: [Double], count: Int) -> [Double] {
        let means = squaredNorms.map { count > 0 ? $0 / Double(count) : 0 }
        let total = means.reduce(0, +)
        if abs(total) < 1e-6 { return [Double](repeating: 1 / Double(means.count), count: means.count) }
        return means.map { $0 / total }
    }
}

extension SCEMergeChunkKernel {
    /// The task vectors' squared norms over `n` elements (`operands − 1` of them), for one pass.
    static func cost(elementCount n: Int, operands: Int) -> KernelCost {
        let sums = StreamingSums.bytes(elementCount: n, width: max(0, operands - 1))
        return KernelCost(initialBytes: sums, passBytes: [sums])
    }
}
