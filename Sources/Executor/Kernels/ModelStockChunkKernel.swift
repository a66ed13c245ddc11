import Checkpoint
import IR

/// Model Stock (arXiv:2403.19522) as mergekit 0.1.5 computes it: the mean pairwise cosine of the fine-tunes'
/// offsets from the base (operand 0) sets how far their average is pulled from the base. bf16/f16 merges round
/// every op to the dtype as mergekit's tensors do and take their norms and sums in PyTorch's f32 order
/// (`HalfPrecision`, `TorchHalfReductions`); f32 merges sum in f64 lanes. Filter-wise, every row
/// (run along the last dimension) gets its own factor from sums over the row, and chunks hold whole rows;
/// otherwise one pass sums the offsets' dot products over the whole tensor.
final class ModelStockChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let filterWise: Bool
    private let fineTunes: Int
    /// The fine-tunes' offset dot products `⟨x_i − base, x_j − base⟩`, pairs `i ≤ j` as `PairProducts.gram`.
    private let products: PairProducts
    private var sums: StreamingSums?
    /// Half precision, whole tensor: the norms and dot products in PyTorch's order, and their tile of terms.
    private var reductions: HalfPrecision.Reductions?
    private var scratch: AccountedBuffer<Float>?
    private var t: Double?
    /// bf16 and f16 merges follow mergekit's per-op rounding (`HalfPrecision`); f32 merges sum in f64.
    private let halfPrecision: Bool

    init(filterWise: Bool, operands: Int, context: KernelContext) {
        self.context = context
        self.filterWise = filterWise
        let n = operands - 1
        fineTunes = n
        products = PairProducts(PairProducts.gram(n).pairs.map { ($0.0 + 1, $0.1 + 1) })
        halfPrecision = context.dtype == .bf16 || context.dtype == .f16
        if !filterWise {
            if halfPrecision {
                reductions = HalfPrecision.Reductions(fineTunes: n, length: context.elementCount, dtype: context.dtype)
                scratch = context.memory.allocate(Float.self, count: HalfPrecision.scratchCount(fineTunes: n, elementCount: context.elementCount))
            } else {
                sums = StreamingSums(elementCount: context.elementCount, width: products.laneCount, memory: context.memory)
            }
        }
    }

    func beginPass() -> Bool { !filterWise && t == nil }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let products = self.products, dtype = context.dtype
        if halfPrecision, let scratch {
            let capacity = TorchHalfReductions.tile(elementCount: context.elementCount), parallel = context.parallel
            TorchHalfReductions.inTiles(operands.range, scratch: scratch.pointer, capacity: capacity,
                                        parallel: context.parallel) { part, tileStart, out in
                HalfPrecision.terms(p.inputs, dtype, part, into: out - tileStart, capacity: capacity)
            } consume: { out, count in
                reductions?.add(out, capacity: capacity, count: count, parallel: parallel)
            }
            return
        }
        sums?.add(operands.range, parallel: context.parallel) { range, acc in
            products.fold(p.inputs, origin: p.inputs[0], range, into: acc)
        }
    }

    func endPass() throws(ExecutionError) {
        if let reductions {
            t = Double(HalfPrecision.interpolation(fineTunes: fineTunes, sums: reductions.totals, context.dtype))
            self.reductions = nil
            scratch = nil
            return
        }
        guard let lanes = sums?.totals() else { return }
        let totals = PairProducts.sums(lanes: lanes)
        t = Self.interpolation(fineTunes: fineTunes) { totals[$0] }
        sums = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = operands.shared(output: out)
        let dtype = context.dtype, halfPrecision = self.halfPrecision
        if let t {
            context.parallel.forEachBlock(in: operands.range) { range in
                if halfPrecision {
                    HalfPrecision.write(p, t: Float(t), range, dtype)
                } else {
                    Self.write(p, t: t, range, dtype)
                }
            }
            return
        }
        let (length, products, fineTunes) = (context.rowLength, self.products, self.fineTunes)
        let rows = (operands.range.lowerBound / length)..<(operands.range.upperBound / length)
        if halfPrecision {
            let streams = HalfPrecision.width(fineTunes: fineTunes)
            context.parallel.forEachPart(of: rows) { part in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: streams * length) { buffer in
                    for r in part {
                        let row = (r * length)..<((r + 1) * length)
                        HalfPrecision.terms(p.inputs, dtype, row, into: buffer.baseAddress! - row.lowerBound, capacity: length)
                        var sums = HalfPrecision.Reductions(fineTunes: fineTunes, length: length, dtype: dtype)
                        sums.add(buffer.baseAddress!, capacity: length, count: length, parallel: Parallel(threads: 1))
                        let t = HalfPrecision.interpolation(fineTunes: fineTunes, sums: sums.totals, dtype)
                        HalfPrecision.write(p, t: t, row, dtype)
                    }
                }
            }
            return
        }
        context.parallel.forEachPart(of: rows) { part in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: products.pairs.count + products.laneCount) { buffer in
                let total = buffer.baseAddress!, lanes = total + products.pairs.count
                for r in part {
                    let row = (r * length)..<((r + 1) * length)
                    Self.rowSums(products, p, row, total: total, lanes: lanes)
                    Self.write(p, t: Self.interpolation(fineTunes: fineTunes) { total[$0] }, row, dtype)
                }
            }
        }
    }

    /// A row's sums: the row folded into eight lanes by global index (`PairProducts.fold`), then each pair's lanes
    /// added in lane order (`lanes` holds `products.laneCount` doubles of scratch).
    private static func rowSums(_ products: PairProducts, _ p: SharedPointers, _ row: Range<Int>,
                                total: UnsafeMutablePointer<Double>, lanes: UnsafeMutablePointer<Double>) {
        lanes.initialize(repeating: 0, count: products.laneCount)
        products.fold(p.inputs, origin: p.inputs[0], row, into: lanes)
        for (q, sum) in PairProducts.sums(lanes: lanes, pairs: products.pairs.count).enumerated() { total[q] = sum }
    }

    /// The interpolation factor from the offsets' dot products (`sum(q)`: sum `q` of `products`):
    /// `n·cos / (1 + (n − 1)·cos)`, 0 where the denominator vanishes (mergekit keeps the base there).
    static func interpolation(fineTunes n: Int, _ sum: (Int) -> Double) -> Double {
        func dot(_ i: Int, _ j: Int) -> Double { sum(PairProducts.gramIndex(i - 1, j - 1, count: n)) }
        var cosSum = 0.0
        var pairs = 0
        for i in 1...n {
            for j in (i + 1)..<(n + 1) {
                let c = dot(i, j) / max(dot(i, i).squareRoot() * dot(j, j).squareRoot(), 1e-6)
                cosSum += min(1, max(-1, c))
                pairs += 1
            }
        }
        let cos = cosSum / Double(pairs)
        let denominator = 1 + Double(n - 1) * cos
        return abs(denominator) < 1e-6 ? 0 : Double(n) * cos / denominator
    }

    /// `t·mean(fine-tunes) + (1 − t)·base` over `range`, rounded to `dtype`.
    @inline(__always)
    private static func write(_ p: SharedPointers, t: Double, _ range: Range<Int>, _ dtype: DType) {
        let n = p.inputs.count - 1
        // A tile at a time, fine-tune by fine-tune, each element's sum from 0 in fine-tune order (vectorizable).
        let tile = 1024
        withUnsafeTemporaryAllocation(of: Double.self, capacity: tile) { buffer in
            let sum = buffer.baseAddress!
            var start = range.lowerBound
            while start < range.upperBound {
                let m = min(tile, range.upperBound - start)
                for e in 0..<m { sum[e] = 0 }
                for k in 1...n {
                    let x = p.inputs[k] + start
                    for e in 0..<m { sum[e] += Double(x[e]) }
                }
                let base = p.inputs[0] + start, o = p.output + start
                for e in 0..<m { o[e] = Float(t * (sum[e] / Double(n)) + (1 - t) * Double(base[e])) }
                DTypeConversion.roundInPlace(o, count: m, to: dtype)
                start += m
            }
        }
    }
}

extension ModelStockChunkKernel {
    /// mergekit's `model_stock_merge_method` with bf16/f16 tensors, where PyTorch rounds every op to the dtype:
    /// offsets `x − base` rounded; `torch.norm` of an offset (squares summed in f32, the root rounded); the dot
    /// `(a·b).sum()` of rounded products, its sum rounded; each cosine `dot / max(‖a‖·‖b‖, 1e-6)` and their mean,
    /// `1 + (n − 1)·cos`, `n·cos / denominator` rounded op by op; the output
    /// `t·(Σ fine-tunes / n) + (1 − t)·base` with the running sum, the quotient and each product and sum rounded.
    /// The norms and sums over the tensor (or row) are PyTorch's f32 reductions on one thread
    /// (`TorchHalfReductions.NormTwo`, `RowSum`), fed in order from tiles of terms computed in parallel.
    enum HalfPrecision {
        /// Sums per element: `n` squared offsets, then the `n(n−1)/2` rounded offset products `i < j`.
        static func width(fineTunes n: Int) -> Int { n + n * (n - 1) / 2 }

        /// Floats of the whole-tensor pass's tile of terms.
        static func scratchCount(fineTunes n: Int, elementCount: Int) -> Int {
            width(fineTunes: n) * TorchHalfReductions.tile(elementCount: elementCount)
        }

        /// The terms of elements `range` (global indices) of the operands (base first): stream `k < n` the rounded
        /// offset `R(x_k − base)`, then stream `n + q` the rounded product of pair `q` (`i < j` in order); term `e`
        /// of stream `s` goes to `out[s·capacity + e]`.
        static func terms(_ xs: [UnsafePointer<Float>], _ dtype: DType, _ range: Range<Int>,
                          into out: UnsafeMutablePointer<Float>, capacity: Int) {
            switch dtype {
            case .bf16: terms(BF16Rounding.self, xs, range, into: out, capacity: capacity)
            case .f16: terms(F16Rounding.self, xs, range, into: out, capacity: capacity)
            default: terms(NoRounding.self, xs, range, into: out, capacity: capacity)
            }
        }

        @inline(__always)
        private static func terms<R: LaneRounding>(_: R.Type, _ xs: [UnsafePointer<Float>], _ range: Range<Int>,
                                                   into out: UnsafeMutablePointer<Float>, capacity: Int) {
            let n = xs.count - 1
            if n == 3 { return threeTerms(R.self, xs, range, into: out, capacity: capacity) }
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: n) { offsets in
                var e = range.lowerBound
                while e < range.upperBound {
                    let lanes = min(8, range.upperBound - e)
                    let base = LaneConversions.load(xs[0], e, lanes)
                    for k in 0..<n {
                        offsets[k] = R.round(LaneConversions.load(xs[k + 1], e, lanes) - base)
                        LaneConversions.store(offsets[k], out + k * capacity, e, lanes)
                    }
                    var q = n
                    for i in 0..<n {
                        for j in (i + 1)..<n {
                            LaneConversions.store(R.round(offsets[i] * offsets[j]), out + q * capacity, e, lanes)
                            q += 1
                        }
                    }
                    e += lanes
                }
            }
        }

        /// `terms` of three fine-tunes (the usual model_stock merge) with the offsets in registers: the same
        /// streams, offsets 0, 1, 2, then products (0, 1), (0, 2), (1, 2).
        @inline(__always)
        private static func threeTerms<R: LaneRounding>(_: R.Type, _ xs: [UnsafePointer<Float>], _ range: Range<Int>,
                                                        into out: UnsafeMutablePointer<Float>, capacity: Int) {
            let (base, x1, x2, x3) = (xs[0], xs[1], xs[2], xs[3])
            var e = range.lowerBound
            while e < range.upperBound {
                let lanes = min(8, range.upperBound - e)
                let b = LaneConversions.load(base, e, lanes)
                let d1 = R.round(LaneConversions.load(x1, e, lanes) - b)
                let d2 = R.round(LaneConversions.load(x2, e, lanes) - b)
                let d3 = R.round(LaneConversions.load(x3, e, lanes) - b)
                let streams = (d1, d2, d3, R.round(d1 * d2), R.round(d1 * d3), R.round(d2 * d3))
                LaneConversions.store(streams.0, out, e, lanes)
                LaneConversions.store(streams.1, out + capacity, e, lanes)
                LaneConversions.store(streams.2, out + 2 * capacity, e, lanes)
                LaneConversions.store(streams.3, out + 3 * capacity, e, lanes)
                LaneConversions.store(streams.4, out + 4 * capacity, e, lanes)
                LaneConversions.store(streams.5, out + 5 * capacity, e, lanes)
                e += lanes
            }
        }

        /// The offsets' norms (`torch.norm(offset, dim=-1)`) and the pairs' dot products (`(a * b).sum(dim=-1)`)
        /// of one vector, in PyTorch's f32 order (`TorchHalfReductions`), fed tile by tile from `terms`.
        struct Reductions {
            private var norms: [TorchHalfReductions.NormTwo]
            private var dots: [TorchHalfReductions.RowSum]

            init(fineTunes n: Int, length: Int, dtype: DType) {
                norms = (0..<n).map { _ in .init(length: length, dtype: dtype) }
                dots = (0..<(n * (n - 1) / 2)).map { _ in .init(length: length) }
            }

            /// Adds the next `count` terms of every stream (`terms`' layout, `capacity` floats a stream), the
            /// streams on `parallel`'s threads.
            mutating func add(_ terms: UnsafePointer<Float>, capacity: Int, count: Int, parallel: Parallel) {
                TorchHalfReductions.feed(&norms, tile: terms, capacity: capacity, count: count, parallel: parallel)
                TorchHalfReductions.feed(&dots, tile: terms + norms.count * capacity, capacity: capacity, count: count,
                                         parallel: parallel)
            }

            /// The sums of squares, then the dot products (f32), once every term is in.
            var totals: [Float] { norms.map(\.sumOfSquares) + dots.map(\.sum) }
        }

        /// The interpolation factor `t` (a value of `dtype`) from the f32 sums (`Reductions.totals`), as mergekit
        /// computes it in `dtype`.
        static func interpolation(fineTunes n: Int, sums: [Float], _ dtype: DType) -> Float {
            func r(_ v: Float) -> Float { DTypeConversion.round(v, to: dtype) }
            let norms = (0..<n).map { r(sums[$0].squareRoot()) }
            let tiny = r(Float(1e-6))
            var cosSum: Float = 0
            var q = n, pairs = 0
            for i in 0..<n {
                for j in (i + 1)..<n {
                    let product = r(norms[i] * norms[j])
                    let c = r(r(sums[q]) / (product < tiny ? tiny : product))
                    cosSum += c < -1 ? -1 : c > 1 ? 1 : c
                    q += 1
                    pairs += 1
                }
            }
            let cos = r(cosSum / Float(pairs))
            let denominator = r(1 + r(Float(n - 1) * cos))
            return abs(denominator) < tiny ? 0 : r(r(Float(n) * cos) / denominator)
        }

        /// `t·mean(fine-tunes) + (1 − t)·base` over `range`, each op rounded to `dtype`, eight elements at a time.
        static func write(_ p: SharedPointers, t: Float, _ range: Range<Int>, _ dtype: DType) {
            switch dtype {
            case .bf16: write(BF16Rounding.self, p, t: t, range, dtype)
            case .f16: write(F16Rounding.self, p, t: t, range, dtype)
            default: write(NoRounding.self, p, t: t, range, dtype)
            }
        }

        @inline(__always)
        private static func write<R: LaneRounding>(_: R.Type, _ p: SharedPointers, t: Float, _ range: Range<Int>,
                                                   _ dtype: DType) {
            typealias F = SIMD8<Float>
            let n = p.inputs.count - 1
            let ts = F(repeating: t), u = F(repeating: DTypeConversion.round(1 - t, to: dtype))
            let count = F(repeating: Float(n))
            var e = range.lowerBound
            while e < range.upperBound {
                let lanes = min(8, range.upperBound - e)
                // Python's `sum(ws)`: 0 + w₁ is w₁, then each addition rounded.
                var sum = LaneConversions.load(p.inputs[1], e, lanes)
                for k in stride(from: 2, through: n, by: 1) {
                    sum = R.round(sum + LaneConversions.load(p.inputs[k], e, lanes))
                }
                let average = R.round(sum / count)
                let m = R.round(R.round(ts * average) + R.round(u * LaneConversions.load(p.inputs[0], e, lanes)))
                LaneConversions.store(m, p.output, e, lanes)
                e += lanes
            }
        }
    }

    /// The fine-tunes' offset dot products over `n` elements for one pass; nothing when `filterWise` (each row
    /// is done within its chunk).
    static func cost(filterWise: Bool, elementCount n: Int, operands: Int, dtype: DType) -> KernelCost {
        guard !filterWise else { return KernelCost() }
        let fineTunes = operands - 1
        if dtype == .bf16 || dtype == .f16 {
            let scratch = HalfPrecision.scratchCount(fineTunes: fineTunes, elementCount: n) * 4
            return KernelCost(initialBytes: scratch, passBytes: [scratch])
        }
        let sums = StreamingSums.bytes(elementCount: n, width: fineTunes * (fineTunes + 1) / 2 * PairProducts.lanes)
        return KernelCost(initialBytes: sums, passBytes: [sums])
    }
}
