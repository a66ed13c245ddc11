import Checkpoint
import IR

/// RAM and RAM+ (mergekit's `ram` / `ramplus_tl`) over task vectors: an element counts for a task vector when
/// its magnitude exceeds `epsilon`; elements only one vector has are taken as they are (RAM+ scales them by
/// that vector's λ), elements several have are averaged over those, all others are zero.
enum RamKernel {
    /// Elements counted at a time by `count`, operand by operand, in vectorizable loops.
    static let tile = 1024

    /// RAM's and RAM+'s merge of elements `range` of the task vectors `xs` (values of the merge dtype `dtype`) into
    /// `o`, as mergekit computes it with mergekit's masks as factors (`z = x · significant`): per vector the unique
    /// term `(z · unique) · λ_j`, an f32 product (RAM+'s λ is an f32 tensor; RAM's `scales` are all 1, which
    /// leaves `z · unique` as it is), and the shared term `(z · overlap) / count` rounded to `dtype` (the counts
    /// become that dtype); their sums added over the vectors in f32 from 0 (`sum(dim=0)`). The result stays f32:
    /// RAM's node rounds it to `dtype` (`forEachRoundedBlock`), RAM+'s stays f32 on bf16/f16 merges (mergekit's
    /// output is F32 there; the planner rounds it once, after adding the base in f32). NaN and ±∞ task-vector values
    /// give NaN, as in mergekit.
    static func merge(_ xs: [UnsafePointer<Float>], threshold: Float, scales: [Float], dtype: DType,
                             _ range: Range<Int>, into o: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .bf16: merge(BF16Rounding.self, xs, threshold: threshold, scales: scales, range, into: o)
        case .f16: merge(F16Rounding.self, xs, threshold: threshold, scales: scales, range, into: o)
        default: merge(NoRounding.self, xs, threshold: threshold, scales: scales, range, into: o)
        }
    }

    @inline(__always)
    private static func merge<R: LaneRounding>(_: R.Type, _ xs: [UnsafePointer<Float>], threshold: Float,
                                               scales: [Float], _ range: Range<Int>,
                                               into o: UnsafeMutablePointer<Float>) {
        typealias F = SIMD8<Float>
        let t = F(repeating: threshold)
        var i = range.lowerBound
        while i < range.upperBound {
            let lanes = min(8, range.upperBound - i)
            var count = F()
            for x in xs {
                count += F().replacing(with: 1, where: LaneConversions.magnitude(LaneConversions.load(x, i, lanes)) .> t)
            }
            let divisor = count.replacing(with: 1, where: count .< 1)
            let unique = F().replacing(with: 1, where: count .== 1)
            let overlap = F().replacing(with: 1, where: count .> 1)
            var sum = F()
            for (j, x) in xs.enumerated() {
                let v = LaneConversions.load(x, i, lanes)
                let z = v * F().replacing(with: 1, where: LaneConversions.magnitude(v) .> t)
                sum += (z * unique) * F(repeating: scales[j]) + R.round((z * overlap) / divisor)
            }
            LaneConversions.store(sum, o, i, lanes)
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

    /// RAM+'s per-vector `λ = 1 + r · clamp(shared / max(unique, epsilon), 0, alpha)` from the counts (shared
    /// counts, then unique ones), in f32 as mergekit's tensors compute it (the counts and the Python scalars
    /// become f32; NaN stays NaN).
    static func plusScales(counts: [Double], r: Double, alpha: Double, epsilon: Double) -> [Float] {
        let k = counts.count / 2
        return (0..<k).map { j in
            let unique = Float(counts[k + j]), epsilon = Float(epsilon)
            let rho = Float(counts[j]) / (unique < epsilon ? epsilon : unique)
            let clamped = rho < 0 ? 0 : rho > Float(alpha) ? Float(alpha) : rho
            return 1 + Float(r) * clamped
        }
    }

    /// `epsilon` as torch compares it with a tensor of the compute dtype (rounded to that dtype).
    static func threshold(_ epsilon: Double, _ dtype: DType) -> Float {
        DTypeConversion.round(Float(epsilon), to: dtype)
    }
}

/// RAM in streaming form: the merge (`RamKernel.merge` with every λ 1), a block of each chunk per worker.
final class RamChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let threshold: Float

    init(threshold: Float, context: KernelContext) {
        self.context = context
        self.threshold = threshold
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let threshold = self.threshold, dtype = context.dtype
        let ones = [Float](repeating: 1, count: operands.pointers.count)
        context.forEachRoundedBlock(operands, into: out) { p, range in
            RamKernel.merge(p.inputs, threshold: threshold, scales: ones, dtype: dtype, range, into: p.output)
        }
    }
}

/// RAM+ in streaming form: one pass counting shared and unique significant elements, then the merge
/// (`RamKernel.merge`). The task vectors' dtype (the merge dtype) sets the threshold and the shared terms'
/// rounding; the node itself is f32 on bf16/f16 merges (see `RAMPlusTL`).
final class RamPlusChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let r: Double, alpha: Double, epsilon: Double
    private let threshold: Float
    /// The task vectors' dtype.
    private let mergeDType: DType
    private var counts: StreamingSums?
    private var scales: [Float]?

    init(r: Double, alpha: Double, epsilon: Double, operands: Int, context: KernelContext) {
        self.context = context
        (self.r, self.alpha, self.epsilon) = (r, alpha, epsilon)
        mergeDType = context.operandDTypes.first ?? context.dtype
        threshold = RamKernel.threshold(epsilon, mergeDType)
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
        guard let scales else { return }
        let threshold = self.threshold, dtype = mergeDType
        context.forEachRoundedBlock(operands, into: out) { p, range in
            RamKernel.merge(p.inputs, threshold: threshold, scales: scales, dtype: dtype, range, into: p.output)
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
