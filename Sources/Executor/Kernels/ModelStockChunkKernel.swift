import Checkpoint
import IR

/// Model Stock (arXiv:2403.19522) as mergekit 0.1.5 computes it: the mean pairwise cosine of the fine-tunes'
/// offsets from the base (operand 0) sets how far their average is pulled from the base. Filter-wise, every row
/// (run along the last dimension) gets its own factor from sums over the row, and chunks hold whole rows;
/// otherwise one pass sums the offsets' dot products over the whole tensor.
final class ModelStockChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let filterWise: Bool
    private let fineTunes: Int
    /// The fine-tunes' offset dot products `⟨x_i − base, x_j − base⟩`, pairs `i ≤ j` as `PairProducts.gram`.
    private let products: PairProducts
    private var sums: StreamingSums?
    private var t: Double?

    init(filterWise: Bool, operands: Int, context: KernelContext) {
        self.context = context
        self.filterWise = filterWise
        let n = operands - 1
        fineTunes = n
        products = PairProducts(PairProducts.gram(n).pairs.map { ($0.0 + 1, $0.1 + 1) })
        if !filterWise {
            sums = StreamingSums(elementCount: context.elementCount, width: products.laneCount, memory: context.memory)
        }
    }

    func beginPass() -> Bool { !filterWise && t == nil }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let products = self.products
        sums?.add(operands.range, parallel: context.parallel) { range, acc in
            products.fold(p.inputs, origin: p.inputs[0], range, into: acc)
        }
    }

    func endPass() throws(ExecutionError) {
        guard let lanes = sums?.totals() else { return }
        let totals = PairProducts.sums(lanes: lanes)
        t = Self.interpolation(fineTunes: fineTunes) { totals[$0] }
        sums = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = operands.shared(output: out)
        let dtype = context.dtype
        if let t {
            context.parallel.forEachBlock(in: operands.range) { range in Self.write(p, t: t, range, dtype) }
            return
        }
        let (length, products, fineTunes) = (context.rowLength, self.products, self.fineTunes)
        let rows = (operands.range.lowerBound / length)..<(operands.range.upperBound / length)
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
    /// The fine-tunes' offset dot products over `n` elements for one pass; nothing when `filterWise` (each row
    /// is done within its chunk).
    static func cost(filterWise: Bool, elementCount n: Int, operands: Int) -> KernelCost {
        guard !filterWise else { return KernelCost() }
        let fineTunes = operands - 1
        let sums = StreamingSums.bytes(elementCount: n, width: fineTunes * (fineTunes + 1) / 2 * PairProducts.lanes)
        return KernelCost(initialBytes: sums, passBytes: [sums])
    }
}
