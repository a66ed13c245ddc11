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
            // Up to three task vectors per loop, so that their sums' additions overlap (each in index order).
            var k = 1
            while k < p.inputs.count {
                let k1 = min(k + 1, p.inputs.count - 1), k2 = min(k + 2, p.inputs.count - 1)
                let x0 = p.inputs[k], x1 = p.inputs[k1], x2 = p.inputs[k2]
                var s0 = acc[k - 1], s1 = acc[k1 - 1], s2 = acc[k2 - 1]
                for i in range {
                    let v0 = Double(x0[i]), v1 = Double(x1[i]), v2 = Double(x2[i])
                    s0 += v0 * v0
                    s1 += v1 * v1
                    s2 += v2 * v2
                }
                // Repeated vectors end equal; the first copy is written last.
                acc[k2 - 1] = s2
                acc[k1 - 1] = s1
                acc[k - 1] = s0
                k += 3
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
            // Task vector by task vector over the tile (vectorizable): a term that does not agree adds +0, which
            // changes no sum (they start at +0 and never become −0).
            withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * Self.tile) { buffer in
                let sum = buffer.baseAddress!, divisor = sum + Self.tile
                var start = range.lowerBound
                while start < range.upperBound {
                    let n = min(Self.tile, range.upperBound - start)
                    let sign = p.inputs[0] + start
                    for e in 0..<n {
                        sum[e] = 0
                        divisor[e] = 0
                    }
                    for k in 0..<w.count {
                        let x = p.inputs[k + 1] + start, wk = w[k]
                        for e in 0..<n {
                            let v = x[e], agrees = v != 0 && (v > 0) == (sign[e] > 0)
                            sum[e] += agrees ? wk * Double(v) : 0
                            divisor[e] += agrees ? wk : 0
                        }
                    }
                    let o = p.output + start
                    for e in 0..<n { o[e] = Float(sum[e] / max(divisor[e], 1e-6)) }
                    start += n
                }
            }
        }
    }

    /// Elements of the output computed at a time, task vector by task vector.
    static let tile = 1024

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
