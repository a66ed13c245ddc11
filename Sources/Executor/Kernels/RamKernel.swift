import Checkpoint
import IR

/// RAM and RAM+ (mergekit's `ram` / `ramplus_tl`) over task vectors: an element counts for a task vector when
/// its magnitude exceeds `epsilon`; elements only one vector has are taken as they are (RAM+ scales them by
/// that vector's λ), elements several have are averaged over those, all others are zero.
enum RamKernel {
    /// Elements processed at a time by `merge` and `count`, operand by operand, in vectorizable loops.
    static let tile = 1024

    /// Merges elements `range` (global indices) of the task vectors `xs` into `o`: per element the sum over the
    /// vectors whose magnitude exceeds `threshold`, in vector order from 0 (an insignificant vector adds +0, which
    /// changes no sum), divided by their count when several, times `scales[j]` (nil: 1) when only vector `j`.
    @inline(__always)
    static func merge(_ xs: [UnsafePointer<Float>], threshold: Float, scales: [Double]?, _ range: Range<Int>,
                      into o: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * tile) { doubles in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: tile) { counts in
                let sum = doubles.baseAddress!, scale = sum + tile, count = counts.baseAddress!
                var start = range.lowerBound
                while start < range.upperBound {
                    let n = min(tile, range.upperBound - start)
                    for e in 0..<n {
                        sum[e] = 0
                        scale[e] = 1
                        count[e] = 0
                    }
                    for j in xs.indices {
                        let x = xs[j] + start, s = scales?[j] ?? 1
                        for e in 0..<n {
                            let v = x[e], significant = abs(v) > threshold
                            sum[e] += significant ? Double(v) : 0
                            count[e] += significant ? 1 : 0
                            scale[e] = significant ? s : scale[e]
                        }
                    }
                    let out = o + start
                    for e in 0..<n {
                        let c = count[e]
                        out[e] = c == 0 ? 0 : c == 1 ? Float(sum[e] * scale[e]) : Float(sum[e] / Double(c))
                    }
                    start += n
                }
            }
        }
    }

    /// Adds the counts of elements `range` of `xs`: `acc[j]` shared significant elements of vector `j`, `acc[k + j]`
    /// unique ones (`k` vectors). Counted as integers and added once, which is what adding 1 per element gives.
    @inline(__always)
    static func count(_ xs: [UnsafePointer<Float>], threshold: Float, _ range: Range<Int>,
                      into acc: UnsafeMutablePointer<Double>) {
        let k = xs.count
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: tile) { counts in
            let count = counts.baseAddress!
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(tile, range.upperBound - start)
                for e in 0..<n { count[e] = 0 }
                for j in 0..<k {
                    let x = xs[j] + start
                    for e in 0..<n { count[e] += abs(x[e]) > threshold ? 1 : 0 }
                }
                for j in 0..<k {
                    let x = xs[j] + start
                    var shared = 0, unique = 0
                    for e in 0..<n {
                        let significant = abs(x[e]) > threshold
                        shared += significant && count[e] > 1 ? 1 : 0
                        unique += significant && count[e] == 1 ? 1 : 0
                    }
                    acc[j] += Double(shared)
                    acc[k + j] += Double(unique)
                }
                start += n
            }
        }
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

/// RAM in streaming form: the merge, a block of each chunk per worker.
final class RamChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let threshold: Float

    init(threshold: Float, context: KernelContext) {
        self.context = context
        self.threshold = threshold
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let threshold = self.threshold
        context.forEachRoundedBlock(operands, into: out) { p, range in
            RamKernel.merge(p.inputs, threshold: threshold, scales: nil, range, into: p.output)
        }
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
            RamKernel.count(p.inputs, threshold: threshold, range, into: acc)
        }
    }

    func endPass() throws(ExecutionError) {
        scales = RamKernel.plusScales(counts: counts?.totals() ?? [], r: r, alpha: alpha, epsilon: epsilon)
        counts = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let scales = self.scales, threshold = self.threshold
        context.forEachRoundedBlock(operands, into: out) { p, range in
            RamKernel.merge(p.inputs, threshold: threshold, scales: scales, range, into: p.output)
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
