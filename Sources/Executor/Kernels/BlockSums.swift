/// Several f64 sums over the same elements in one pass, deterministic for any thread count.
extension Parallel {
    /// Calls `term(range, partial)` once per block to add `width` values into `partial`, then adds the
    /// block partials in block order.
    public func sums(count: Int, width: Int,
                     _ term: @Sendable (Range<Int>, inout [Double]) -> Void) -> [Double] {
        let blocks = (count + Parallel.blockSize - 1) / Parallel.blockSize
        let partials = PartialSums(count: blocks * width)
        forEachBlock(count: count) { range in
            var local = [Double](repeating: 0, count: width)
            term(range, &local)
            let block = range.lowerBound / Parallel.blockSize
            for j in 0..<width { partials.set(block * width + j, local[j]) }
        }
        var total = [Double](repeating: 0, count: width)
        for b in 0..<blocks {
            for j in 0..<width { total[j] += partials.value(b * width + j) }
        }
        return total
    }

    /// `Σ x²` of each input, deterministic for any thread count.
    func squaredNorms(_ p: SharedPointers, count: Int) -> [Double] {
        let m = p.inputs.count
        return sums(count: count, width: m) { range, acc in
            for k in 0..<m {
                var s = 0.0
                for i in range {
                    let x = Double(p.inputs[k][i])
                    s += x * x
                }
                acc[k] += s
            }
        }
    }
}
