import Foundation
import Checkpoint
import IR

/// Arcee Fusion (mergekit 0.1.5 `arcee_fusion`) in streaming form: each element's importance is `|b − a|` times
/// the KL divergence between the softmaxes (over the last dimension, plus 1e-8) of its row in `b` and in `a`;
/// `b` is taken where importance ≥ median + 1.5·(q3 − q1) of all importances, `a` (the base) elsewhere.
/// Passes: the two of a `StreamingSelect` finding the three quartiles (the first also computes every row's KL
/// divergence, kept for the later passes; on a bf16 merge the first pass alone decides them, see `onePass`);
/// chunks are whole rows.
///
/// Elements near the threshold decide between two models, so the importances are computed in float32 in
/// PyTorch's order (see `TorchFloat32`); a KL divergence of ~1e-4 computed in f64 instead differs by up to
/// ~1e-3 relative and flips a few elements per model. (Not reproduced: PyTorch on AVX-512 hardware, and
/// PyTorch splitting one sum over threads, which it does only for a 1-D tensor of more than 32,768 values.)
/// On bf16/f16 merges every op of the importance is rounded to the dtype as mergekit's tensors are (the softmax,
/// `+ 1e-8`, `p/q`, `log`, `p·log`, the row's sum by `TorchHalfReductions.RowSum`, `|b − a|`, its product with
/// the divergence, the threshold's three ops), and the output is `a + R(b − a)·mask` in f32, rounded once (mergekit
/// writes that f32 sum).
///
/// Quantiles are exact: the importances in ascending order (NaN last) indexed at `⌊q·(n − 1)⌋` (in float32).
/// mergekit does the same for up to 1,000,000 elements but above that sorts a random sample of 1,000,000 drawn
/// with replacement, so its threshold for larger tensors is an estimate that varies run to run; ours is the
/// exact value it estimates.
final class ArceeFusionChunkKernel: ChunkKernel {
    /// What the next statistics pass computes.
    private enum Stage {
        case selectHigh, selectLow, done
    }

    private let context: KernelContext
    private let rowLength: Int
    private var stage: Stage
    private var select: StreamingSelect?
    /// Every row's KL divergence, from the first pass on.
    private var divergences: AccountedBuffer<Float>?
    /// Per-worker row buffers of the first pass.
    private var scratch: AccountedBuffer<Float>?
    private var threshold: Float = 0

    init(context: KernelContext) {
        self.context = context
        rowLength = max(1, context.rowLength)
        let n = context.elementCount
        if n > 0 {
            select = StreamingSelect(elementCount: n, threads: context.parallel.threads, memory: context.memory)
            stage = .selectHigh
        } else {
            stage = .done
        }
    }

    /// Rows of the tensor.
    private var rows: Int { context.elementCount / rowLength }

    /// Workers computing divergences (one row buffer each).
    private var rowWorkers: Int { max(1, min(context.parallel.threads, rows)) }

    func beginPass() -> Bool { stage != .done }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        if stage == .selectHigh { computeDivergences(operands) }
        guard let divergences else { return }
        select?.count(operands.range, importances(operands, divergences), parallel: context.parallel)
    }

    /// The KL divergence of each row of the chunk.
    private func computeDivergences(_ operands: ChunkOperands) {
        let length = rowLength
        if divergences == nil { divergences = context.memory.allocate(Float.self, count: rows) }
        if scratch == nil { scratch = context.memory.allocate(Float.self, count: rowWorkers * 3 * length) }
        guard let divergences, let scratch else { return }
        let first = operands.range.lowerBound / length
        let count = operands.range.count / length
        let workers = min(rowWorkers, max(1, count))
        let p = SharedPointers(inputs: [operands.global(0), operands.global(1)], output: divergences.pointer)
        let buffers = SendablePointer(scratch.pointer)
        let dtype = context.dtype
        context.parallel.forEachRow(in: first..<(first + count), workers: workers) { w, r in
            let start = r * length
            p.output[r] = RowDivergence(buffers.pointer + w * 3 * length, length: length)
                .divergence(p.inputs[1] + start, p.inputs[0] + start, count: length, dtype: dtype)
        }
    }

    func endPass() throws(ExecutionError) {
        switch stage {
        case .selectHigh:
            scratch = nil
            select?.finishFirstPass()
            let last = Float(context.elementCount - 1)
            let ranks = [0.25, 0.5, 0.75].map { (q: Float) in min(context.elementCount - 1, Int(q * last)) }
            if Self.onePass(context.dtype) {
                setThreshold(select?.statisticsFromFirstPass(bf16TotalRanks: ranks) ?? [])
            } else {
                select?.beginSecondPass(ranks: ranks)
                stage = .selectLow
            }
        case .selectLow:
            setThreshold(select?.finishSecondPass() ?? [])
        case .done:
            return
        }
    }

    /// Whether the quartiles come from the first pass alone: bf16 importances (rounded to bf16 op by op) have keys
    /// whose high 16 bits decide them (`StreamingSelect.statisticsFromFirstPass(bf16TotalRanks:)`).
    static func onePass(_ dtype: DType) -> Bool { dtype == .bf16 }

    /// mergekit's `median + 1.5 * (q3 - q1)` from the quartiles' statistics, each op in the importances' dtype
    /// (f32, or the bf16/f16 of a half-precision merge); ends the passes.
    private func setThreshold(_ quartiles: [StreamingSelect.Statistic]) {
        let q = quartiles.map { OrderKey.value(ofTotal: $0.key) }
        select = nil
        let dtype = context.dtype
        func r(_ x: Float) -> Float { DTypeConversion.round(x, to: dtype) }
        if q.count == 3 { threshold = r(q[1] + r(1.5 * r(q[2] - q[0]))) }
        stage = .done
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        guard let divergences else { return }
        let importances = importances(operands, divergences)
        let o = SendablePointer(out - operands.range.lowerBound)
        let dtype = context.dtype, threshold = self.threshold
        if dtype == .bf16 || dtype == .f16 {
            context.parallel.forEachAlignedBlock(in: operands.range) { _, range in
                if dtype == .bf16 {
                    importances.merge(BF16Rounding.self, range, threshold: threshold, into: o.pointer)
                } else {
                    importances.merge(F16Rounding.self, range, threshold: threshold, into: o.pointer)
                }
            }
            return
        }
        context.parallel.forEachAlignedBlock(in: operands.range) { _, range in
            let a = importances.base, b = importances.other
            importances.forEachImportance(range) { i, importance in
                // `base + (other − base) · mask` with an f32 mask: the difference in the merge dtype, the rest f32.
                let x = a[i]
                o.pointer[i] = x + DTypeConversion.round(b[i] - x, to: dtype) * (importance >= threshold ? 1 : 0)
            }
            DTypeConversion.roundInPlace(o.pointer + range.lowerBound, count: range.count, to: dtype)
        }
    }

    private func importances(_ operands: ChunkOperands, _ divergences: AccountedBuffer<Float>) -> ArceeImportances {
        ArceeImportances(base: operands.global(0), other: operands.global(1), divergences: divergences.pointer,
                         rowLength: rowLength, dtype: context.dtype)
    }
}

/// Arcee importances `|other − base| · KL(row)` as total-order keys (NaN last).
struct ArceeImportances: OrderKeys, @unchecked Sendable {
    /// The operands, indexed by global element index.
    let base: UnsafePointer<Float>
    let other: UnsafePointer<Float>
    /// Each row's KL divergence.
    let divergences: UnsafePointer<Float>
    let rowLength: Int
    /// The merge dtype: on bf16/f16 the difference, its product with the divergence, are rounded to it.
    let dtype: DType

    /// Calls `body(i, importance)` for each element `i` of `range` (global indices), in increasing order, on an f32
    /// merge (bf16/f16 merges go through `forEachHalfLanes`).
    @inline(__always)
    func forEachImportance(_ range: Range<Int>, _ body: (Int, Float) -> Void) {
        var i = range.lowerBound
        var row = i / rowLength
        while i < range.upperBound {
            let end = min(range.upperBound, (row + 1) * rowLength)
            let kl = divergences[row]
            while i < end {
                body(i, abs(other[i] - base[i]) * kl)
                i += 1
            }
            row += 1
        }
    }

    /// On a bf16/f16 merge, calls `body(i, lanes, a, difference, importance)` for elements `i ..< i + lanes` of
    /// `range` (global indices) eight at a time, in increasing order, never across a row's end: the base `a`,
    /// `R(b − a)` and the importance `R(|R(b − a)| · kl)`.
    @inline(__always)
    func forEachHalfLanes<R: LaneRounding>(_: R.Type, _ range: Range<Int>,
                                           _ body: (Int, Int, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) -> Void) {
        var i = range.lowerBound
        var row = i / rowLength
        while i < range.upperBound {
            let end = min(range.upperBound, (row + 1) * rowLength)
            let k = SIMD8<Float>(repeating: divergences[row])
            LaneConversions.forEachGroup(i..<end) { i, lanes in
                let a = LaneConversions.load(base, i, lanes)
                let difference = R.round(LaneConversions.load(other, i, lanes) - a)
                body(i, lanes, a, difference, R.round(LaneConversions.magnitude(difference) * k))
            }
            i = end
            row += 1
        }
    }

    @inline(__always)
    func forEach(_ range: Range<Int>, _ body: (Int, UInt32) -> Void) {
        @inline(__always) func keys<R: LaneRounding>(_: R.Type) {
            forEachHalfLanes(R.self, range) { i, lanes, _, _, importance in
                let keys = OrderKey.total(importance)
                for l in 0..<lanes { body(i + l, keys[l]) }
            }
        }
        switch dtype {
        case .bf16: keys(BF16Rounding.self)
        case .f16: keys(F16Rounding.self)
        default: forEachImportance(range) { i, importance in body(i, OrderKey.total(importance)) }
        }
    }

    /// The output of a bf16/f16 merge for elements `range` (global indices) into `out` (indexed the same way),
    /// eight at a time: `R(a + R(b − a) · mask)` with the mask 1 where the importance is at least `threshold`,
    /// else 0 (so an infinite or NaN difference still gives NaN, as mergekit's product does).
    @inline(__always)
    func merge<R: LaneRounding>(_: R.Type, _ range: Range<Int>, threshold: Float, into out: UnsafeMutablePointer<Float>) {
        let t = SIMD8<Float>(repeating: threshold)
        forEachHalfLanes(R.self, range) { i, lanes, a, difference, importance in
            let mask = SIMD8<Float>(repeating: 0).replacing(with: 1, where: importance .>= t)
            LaneConversions.store(R.round(a + difference * mask), out, i, lanes)
        }
    }
}

/// One worker's float32 buffers for a row's softmaxes and KL terms.
struct RowDivergence {
    let p: UnsafeMutablePointer<Float>
    let q: UnsafeMutablePointer<Float>
    let terms: UnsafeMutablePointer<Float>

    /// Buffers at `storage`, which holds `3 · length` values.
    init(_ storage: UnsafeMutablePointer<Float>, length: Int) {
        p = storage
        q = storage + length
        terms = storage + 2 * length
    }

    /// `torch.sum(p·log(p/q))` with `p = softmax(x) + 1e-8`, `q = softmax(y) + 1e-8`, all float32; on a bf16/f16
    /// merge (`dtype`) each of those ops rounded to the dtype (PyTorch's half-precision softmax and log are its f32
    /// ones rounded: measured on 15 M values, none differed) and the sum `TorchHalfReductions.RowSum`, rounded.
    func divergence(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int, dtype: DType = .f32) -> Float {
        RowDivergence.softmax(x, count: count, into: p)
        RowDivergence.softmax(y, count: count, into: q)
        guard dtype == .bf16 || dtype == .f16 else {
            for i in 0..<count {
                let pi = p[i] + 1e-8
                let qi = q[i] + 1e-8
                terms[i] = pi * logf(pi / qi)
            }
            return TorchFloat32.rowSum(UnsafeBufferPointer(start: terms, count: count))
        }
        if dtype == .bf16 { halfTerms(BF16Rounding.self, count: count) } else { halfTerms(F16Rounding.self, count: count) }
        var sum = TorchHalfReductions.RowSum(length: count)
        sum.add(terms, count: count)
        return DTypeConversion.round(sum.sum, to: dtype)
    }

    /// `R(p'·R(log R(p'/q')))` with `p' = R(R(p) + 1e-8)`, `q'` the same, into `terms`, eight at a time. The
    /// quotient is a value of the dtype, so its rounded logarithm comes from a table of all 65,536 (`HalfLogarithms`).
    @inline(__always)
    private func halfTerms<R: LaneRounding>(_: R.Type, count: Int) {
        let eps = SIMD8<Float>(repeating: 1e-8)
        let bf16 = R.self == BF16Rounding.self
        let table = bf16 ? HalfLogarithms.bf16 : HalfLogarithms.f16
        table.withUnsafeBufferPointer { logarithms in
            if bf16 { return bf16Terms(count: count, logarithms: logarithms) }
            var i = 0
            while i < count {
                let lanes = min(8, count - i)
                let pi = R.round(R.round(LaneConversions.load(p, i, lanes)) + eps)
                let qi = R.round(R.round(LaneConversions.load(q, i, lanes)) + eps)
                let ratio = R.round(pi / qi)
                var logarithm = SIMD8<Float>()
                for l in 0..<lanes {
                    logarithm[l] = logarithms[bf16 ? Int(ratio[l].bitPattern >> 16) : Int(Float16(ratio[l]).bitPattern)]
                }
                LaneConversions.store(R.round(pi * logarithm), terms, i, lanes)
                i += lanes
            }
        }
    }

    /// `halfTerms` on a bf16 merge in three loops instead of one, so that the table lookups are a loop of their
    /// own (which the compiler can gather) rather than eight lane extractions and insertions per group: `p'` into
    /// `p` and the quotient's bf16 pattern into `q` (as 32-bit words), then the logarithms into `terms`, then
    /// `R(p'·log)`.
    @inline(__always)
    private func bf16Terms(count: Int, logarithms: UnsafeBufferPointer<Float>) {
        typealias R = BF16Rounding
        let eps = SIMD8<Float>(repeating: 1e-8)
        let patterns = UnsafeMutableRawPointer(q)
        @inline(__always) func quotient(_ i: Int, _ lanes: Int) {
            let pi = R.round(R.round(LaneConversions.load(p, i, lanes)) + eps)
            let qi = R.round(R.round(LaneConversions.load(q, i, lanes)) + eps)
            let ratio = unsafeBitCast(R.round(pi / qi), to: SIMD8<UInt32>.self) &>> 16
            LaneConversions.store(pi, p, i, lanes)
            LaneConversions.store(unsafeBitCast(ratio, to: SIMD8<Float>.self), q, i, lanes)
        }
        @inline(__always) func product(_ i: Int, _ lanes: Int) {
            let product = LaneConversions.load(p, i, lanes) * LaneConversions.load(terms, i, lanes)
            LaneConversions.store(R.round(product), terms, i, lanes)
        }
        LaneConversions.forEachGroup(0..<count, quotient)
        for i in 0..<count {
            terms[i] = logarithms[Int(patterns.load(fromByteOffset: 4 * i, as: UInt32.self))]
        }
        LaneConversions.forEachGroup(0..<count, product)
    }

    /// ATen's `_vec_softmax_lastdim`: max, `exp(x − max)`, sum, then multiply by `1 / sum`.
    static func softmax(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>) {
        let top = TorchFloat32.maximumOfAll(UnsafeBufferPointer(start: x, count: count))
        var i = 0
        let (source, target) = (UnsafeRawPointer(x), UnsafeMutableRawPointer(out))
        while i + 8 <= count {
            let v = source.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            target.storeBytes(of: TorchFloat32.exp(v - SIMD8(repeating: top)), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            out[i] = TorchFloat32.exp(x[i] - top)
            i += 1
        }
        let sum = TorchFloat32.sumOfAll(UnsafeBufferPointer(start: out, count: count))
        let inverse = 1 / sum
        for i in 0..<count { out[i] *= inverse }
    }
}

extension ArceeFusionChunkKernel {
    /// What the kernel holds for a tensor of `shape` on `threads` threads: every row's KL divergence (f32) from
    /// the first pass on; in the first pass one table per worker and three rows of scratch per row worker; in
    /// the second (not on a bf16 merge, `dtype`: see `onePass`), three tables (one per quartile) per worker.
    static func cost(shape: [Int], dtype: DType, threads: Int) -> KernelCost {
        let n = shape.reduce(1, *)
        guard n > 0 else { return KernelCost() }
        let length = max(1, shape.count < 2 ? n : shape[shape.count - 1])
        let rows = n / length
        let divergences = rows * 4
        let scratch = max(1, min(threads, rows)) * 3 * length * 4
        let first = StreamingSelect.tableBytes(elementCount: n, threads: threads, slots: 1) + divergences + scratch
        if onePass(dtype) { return KernelCost(passBytes: [first], sweepBytes: divergences) }
        return KernelCost(passBytes: [
            first, StreamingSelect.tableBytes(elementCount: n, threads: threads, slots: 3) + divergences,
        ], sweepBytes: divergences)
    }
}

/// `R(logf(v))` for every value `v` of bf16 and of f16, indexed by the value's 16-bit pattern: glibc's `logf` (as
/// PyTorch's half-precision `log` computes it, in f32) rounded to the dtype. arcee_fusion's half-precision KL terms
/// take the logarithm of a quotient already rounded to the dtype, so a lookup gives the same bits as the call.
enum HalfLogarithms {
    /// Indexed by a bf16 bit pattern (the high half of the f32's).
    static let bf16: [Float] = (0..<65536).map { bits in
        BF16Rounding.round(logf(Float(bitPattern: UInt32(bits) << 16)))
    }
    /// Indexed by an f16 bit pattern.
    static let f16: [Float] = (0..<65536).map { bits in
        F16Rounding.round(logf(Float(Float16(bitPattern: UInt16(bits)))))
    }
}
