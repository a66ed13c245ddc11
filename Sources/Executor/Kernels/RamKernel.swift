import Checkpoint
import IR

/// RAM and RAM+ (mergekit's `ram` / `ramplus_tl`) over task vectors: an element counts for a task vector when
/// its magnitude exceeds `epsilon`; elements only one vector has are taken as they are (RAM+ scales them by
/// that vector's λ), elements several have are averaged over those, all others are zero.
enum RamKernel {
    /// One merged element; `scales[j]` multiplies elements only vector `j` has (nil: 1).
    @inline(__always)
    static func merge(_ p: SharedPointers, threshold: Float, scales: [Double]?, _ i: Int) -> Float {
        var contributors = 0
        var sum = 0.0
        var last = 0
        for j in 0..<p.inputs.count where abs(p.inputs[j][i]) > threshold {
            contributors += 1
            sum += Double(p.inputs[j][i])
            last = j
        }
        switch contributors {
        case 0: return 0
        case 1: return Float(sum * (scales?[last] ?? 1))
        default: return Float(sum / Double(contributors))
        }
    }

    /// Adds element `i`'s counts: `acc[j]` shared significant elements of vector `j`, `acc[k + j]` unique ones.
    @inline(__always)
    static func count(_ p: SharedPointers, threshold: Float, _ i: Int, into acc: UnsafeMutablePointer<Double>) {
        let k = p.inputs.count
        var contributors = 0
        for j in 0..<k where abs(p.inputs[j][i]) > threshold { contributors += 1 }
        guard contributors > 0 else { return }
        let slot = contributors == 1 ? k : 0
        for j in 0..<k where abs(p.inputs[j][i]) > threshold { acc[slot + j] += 1 }
    }

    /// RAM+'s per-vector `λ = 1 + r · clamp(shared / max(unique, epsilon), 0, alpha)` from the counts.
    static func plusScales(counts: [Double], r: Double, alpha: Double, epsilon: Double) -> [Double] {
        let k = counts.count / 2
        return (0..<k).map { j in
            let rho = counts[j] / max(counts[k + j], epsilon)
            return 1 + r * min(max(rho, 0), alpha)
        }
    }

    /// `epsilon` as torch compares it with a tensor of the compute dtype (rounded to that dtype).
    static func threshold(_ epsilon: Double, _ dtype: DType) -> Float {
        DTypeConversion.round(Float(epsilon), to: dtype)
    }
}

/// RAM+ in streaming form: one pass counting shared and unique significant elements, then the merge.
final class RamPlusChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let r: Double, alpha: Double, epsilon: Double
    private let threshold: Float
    private var counts: StreamingSums?
    private var scales: [Double]?

    init(r: Double, alpha: Double, epsilon: Double, operands: Int, context: KernelContext) {
        self.context = context
        (self.r, self.alpha, self.epsilon) = (r, alpha, epsilon)
        threshold = RamKernel.threshold(epsilon, context.dtype)
        counts = StreamingSums(elementCount: context.elementCount, width: 2 * operands, memory: context.memory)
    }

    func beginPass() -> Bool { scales == nil }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let threshold = self.threshold
        counts?.add(operands.range, parallel: context.parallel) { range, acc in
            for i in range { RamKernel.count(p, threshold: threshold, i, into: acc) }
        }
    }

    func endPass() throws(ExecutionError) {
        scales = RamKernel.plusScales(counts: counts?.totals() ?? [], r: r, alpha: alpha, epsilon: epsilon)
        counts = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let scales = self.scales, threshold = self.threshold
        context.forEachRoundedBlock(operands, into: out) { p, range in
            for i in range { p.output[i] = RamKernel.merge(p, threshold: threshold, scales: scales, i) }
        }
    }
}

extension RamPlusChunkKernel {
    /// Shared and unique counts of each of `operands` task vectors over `n` elements, for one pass.
    static func cost(elementCount n: Int, operands: Int) -> KernelCost {
        let counts = StreamingSums.bytes(elementCount: n, width: 2 * operands)
        return KernelCost(initialBytes: counts, passBytes: [counts])
    }
}
