import IR

/// Exact magnitude selection: keeps the elements whose rank by |x| (ascending, equal magnitudes ordered by
/// index) falls in a range, optionally rescaling the kept part to the input's L1 norm as mergekit does.
public enum MagnitudePruneKernel {
    public static func prune(_ x: TensorBuffer, keep: Range<Int>, rescale: Bool, dtype: DType,
                             parallel: Parallel) -> TensorBuffer {
        let n = x.count
        let lo = max(0, keep.lowerBound)
        let hi = min(n, keep.upperBound)
        guard lo < hi else {
            let out = TensorBuffer(count: n)
            out.pointer.initialize(repeating: 0, count: n)
            return out
        }
        let ranks = MagnitudeRank(values: x.pointer, count: n, parallel: parallel)
        let first = ranks.statistic(atRank: lo)
        let last = ranks.statistic(atRank: hi - 1)
        // Among elements equal to a boundary magnitude, index order decides: skip the first
        // `lo - first.countLess` equal to the lower one; keep the first `hi - last.countLess` equal to the upper one.
        let skipLow = lo - first.countLess
        let takeHigh = hi - last.countLess
        let out = TensorBuffer(count: n)
        var seenLow = 0
        var seenHigh = 0
        for i in 0..<n {
            let k = MagnitudeRank.key(x.pointer[i])
            var kept = k > first.bits && k < last.bits
            if k == first.bits || k == last.bits {
                kept = true
                if k == first.bits {
                    kept = seenLow >= skipLow
                    seenLow += 1
                }
                if k == last.bits {
                    kept = kept && seenHigh < takeHigh
                    seenHigh += 1
                }
            }
            out.pointer[i] = kept ? x.pointer[i] : 0
        }
        if rescale { rescaleToL1(of: x, out, parallel: parallel) }
        if dtype != .f32 {
            for i in 0..<n { out.pointer[i] = DTypeConversion.round(out.pointer[i], to: dtype) }
        }
        return out
    }

    /// Scales `out` so its L1 norm matches `x`'s, unless either is below 1e-7 (mergekit's rule).
    static func rescaleToL1(of x: TensorBuffer, _ out: TensorBuffer, parallel: Parallel) {
        let p = SharedPointers(inputs: [UnsafePointer(x.pointer)], output: out.pointer)
        let norms = parallel.sums(count: x.count, width: 2) { range, acc in
            for i in range {
                acc[0] += Double(abs(p.inputs[0][i]))
                acc[1] += Double(abs(p.output[i]))
            }
        }
        guard norms[0] >= 1e-7, norms[1] >= 1e-7 else { return }
        let factor = Float(norms[0] / norms[1])
        parallel.forEachBlock(count: out.count) { range in
            for i in range { p.output[i] *= factor }
        }
    }
}
