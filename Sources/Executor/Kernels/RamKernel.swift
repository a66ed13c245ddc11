import Checkpoint
import IR

/// RAM and RAM+ (mergekit's `ram` / `ramplus_tl`) over task vectors: an element counts for a task vector when
/// its magnitude exceeds `epsilon`; elements only one vector has are taken as they are (RAM+ scales them by
/// that vector's λ), elements several have are averaged over those, all others are zero.
enum RamKernel {
    /// Elements processed at a time by `merge` and `count`, operand by operand, in vectorizable loops.
    static let tile = 1024

    /// RAM+'s merge (RAM takes `ramMerge`) of elements `range` (global indices) of the task vectors `xs` into `o`:
    /// per element the sum over the vectors whose magnitude exceeds `threshold`, in vector order from 0 (an
    /// insignificant vector adds +0, which changes no sum), divided by their count when several, times `scales[j]`
    /// (nil: 1) when only vector `j`.
    /// Eight elements at a time in f64 vector registers.
    @inline(__always)
    static func merge(_ xs: [UnsafePointer<Float>], threshold: Float, scales: [Double]?, _ range: Range<Int>,
                      into o: UnsafeMutablePointer<Float>) {
        typealias D = SIMD8<Double>
        let t = D(repeating: Double(threshold))
        var i = range.lowerBound
        // Eight elements at a time in registers: the sum, the count, and the last significant vector's term times
        // its scale (the result when one vector counts: `sum · scale`, −0 included when that product is −0).
        withUnsafeTemporaryAllocation(of: D.self, capacity: xs.count) { buffer in
            let scale = buffer.baseAddress!
            for j in xs.indices { scale[j] = D(repeating: scales?[j] ?? 1) }
            while i + 8 <= range.upperBound {
                var sum = D(), count = D(), scaled = D()
                for j in xs.indices {
                    let value = LaneConversions.wide(xs[j], i)
                    let significant = LaneConversions.magnitude(value) .> t
                    sum += D().replacing(with: value, where: significant)
                    count += D().replacing(with: 1, where: significant)
                    scaled.replace(with: value * scale[j], where: significant)
                }
                // Divided by at least 1 (lanes of no or one vector take 0 and the scaled term instead), so that the
                // division is one vector instruction.
                let m = (sum / count.replacing(with: 1, where: count .< 1)).replacing(with: scaled, where: count .== 1)
                    .replacing(with: 0, where: count .== 0)
                UnsafeMutableRawPointer(o + i).storeBytes(of: LaneConversions.narrow(m), as: SIMD8<Float>.self)
                i += 8
            }
        }
        while i < range.upperBound {
            var sum = 0.0, count = 0, scale = 1.0
            for j in xs.indices {
                let v = xs[j][i]
                guard abs(v) > threshold else { continue }
                sum += Double(v)
                count += 1
                scale = scales?[j] ?? 1
            }
            o[i] = count == 0 ? 0 : count == 1 ? Float(sum * scale) : Float(sum / Double(count))
            i += 1
        }
    }

    /// RAM's merge of elements `range` of the task vectors `xs` (values of `dtype`) into `o`, as mergekit computes it
    /// with tensors of the merge dtype: per vector the term `x` when only it is significant, `x / count` rounded to
    /// `dtype` when `count` are, and `x · 0` otherwise (so NaN and ±∞ task-vector values give NaN, as in mergekit);
    /// the terms summed in f32 in vector order from 0 (`sum(dim=0)`), the sum rounded to `dtype`.
    static func ramMerge(_ xs: [UnsafePointer<Float>], threshold: Float, dtype: DType, _ range: Range<Int>,
                         into o: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .bf16: ramMerge(BF16Rounding.self, xs, threshold: threshold, range, into: o)
        case .f16: ramMerge(F16Rounding.self, xs, threshold: threshold, range, into: o)
        default: ramMerge(NoRounding.self, xs, threshold: threshold, range, into: o)
        }
    }

    @inline(__always)
    private static func ramMerge<R: LaneRounding>(_: R.Type, _ xs: [UnsafePointer<Float>], threshold: Float,
                                                  _ range: Range<Int>, into o: UnsafeMutablePointer<Float>) {
        typealias F = SIMD8<Float>
        @inline(__always) func magnitude(_ v: F) -> F {
            unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: F.self)
        }
        let t = F(repeating: threshold)
        var i = range.lowerBound
        while i < range.upperBound {
            let lanes = min(8, range.upperBound - i)
            var count = F()
            for x in xs { count += F().replacing(with: 1, where: magnitude(LaneConversions.load(x, i, lanes)) .> t) }
            let divisor = count.replacing(with: 1, where: count .< 1)
            // mergekit's masks as factors: `z = x · significant`, then `z · unique + (z · overlap) / count`, so
            // that NaN (never significant) and ±∞ (times a zero mask) give NaN as there.
            let unique = F().replacing(with: 1, where: count .== 1)
            let overlap = F().replacing(with: 1, where: count .> 1)
            var sum = F()
            for x in xs {
                let v = LaneConversions.load(x, i, lanes)
                let z = v * F().replacing(with: 1, where: magnitude(v) .> t)
                sum += z * unique + R.round((z * overlap) / divisor)
            }
            let m = R.round(sum)
            for l in 0..<lanes { o[i + l] = m[l] }
            i += lanes
        }
    }

    /// Adds the counts of elements `range` of `xs`: `acc[j]` shared significant elements of vector `j`, `acc[k + j]`
    /// unique ones (`k` vectors). Counted as integers per tile of `tile` elements and added once per tile, which
    /// is what adding 1 per element gives; eight elements at a time in vector registers (counts held as exact
    /// small floats).
    @inline(__always)
    static func count(_ xs: [UnsafePointer<Float>], threshold: Float, _ range: Range<Int>,
                      into acc: UnsafeMutablePointer<Double>) {
        typealias F = SIMD8<Float>
        let k = xs.count, t = F(repeating: threshold)
        @inline(__always) func significant(_ x: UnsafePointer<Float>, _ e: Int) -> SIMDMask<SIMD8<Int32>> {
            let bits = UnsafeRawPointer(x + e).loadUnaligned(as: SIMD8<UInt32>.self) & 0x7FFF_FFFF
            return unsafeBitCast(bits, to: F.self) .> t
        }
        withUnsafeTemporaryAllocation(of: F.self, capacity: tile / 8) { buffer in
            let counts = buffer.baseAddress!
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(tile, range.upperBound - start)
                let vectors = n / 8
                counts.update(repeating: F(), count: vectors)
                for j in 0..<k {
                    let x = xs[j] + start
                    for v in 0..<vectors { counts[v] += F().replacing(with: 1, where: significant(x, 8 * v)) }
                }
                for j in 0..<k {
                    let x = xs[j] + start
                    var shared = F(), unique = F()
                    for v in 0..<vectors {
                        let s = significant(x, 8 * v), c = counts[v]
                        shared += F().replacing(with: 1, where: s .& (c .> 1))
                        unique += F().replacing(with: 1, where: s .& (c .== 1))
                    }
                    var sharedTail = 0, uniqueTail = 0
                    for e in (8 * vectors)..<n where abs(x[e]) > threshold {
                        var c = 0
                        for m in 0..<k where abs(xs[m][start + e]) > threshold { c += 1 }
                        if c > 1 { sharedTail += 1 } else { uniqueTail += 1 }
                    }
                    acc[j] += Double(Int(shared.sum()) + sharedTail)
                    acc[k + j] += Double(Int(unique.sum()) + uniqueTail)
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

/// RAM in streaming form: the merge (`RamKernel.ramMerge`), a block of each chunk per worker.
final class RamChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let threshold: Float

    init(threshold: Float, context: KernelContext) {
        self.context = context
        self.threshold = threshold
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let threshold = self.threshold, dtype = context.dtype
        context.forEachRoundedBlock(operands, into: out) { p, range in
            RamKernel.ramMerge(p.inputs, threshold: threshold, dtype: dtype, range, into: p.output)
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
