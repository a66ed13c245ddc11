import IR

/// Exact magnitude selection: keeps the elements whose rank by |x| (ascending, equal magnitudes ordered by
/// index) falls in a range, optionally rescaling the kept part to the input's L1 norm as mergekit does.
public enum MagnitudePruneKernel {
    public static func prune(_ x: TensorBuffer, keep: Range<Int>, rescale: Bool, dtype: DType,
                             parallel: Parallel) -> TensorBuffer {
        let n = x.count
        let out = TensorBuffer(count: n)
        guard n > 0 else { return out }
        let xs = UnsafeBufferPointer(start: x.pointer, count: n)
        var sorted = xs.map { abs($0) }
        sorted.sort()
        let lo = max(0, keep.lowerBound)
        let hi = min(n, keep.upperBound)
        // Only magnitudes equal to the boundary ranks need the index order among equals.
        let lowValue: Float? = lo < hi ? sorted[lo] : nil
        let highValue: Float? = lo < hi ? sorted[hi - 1] : nil
        var seenEqual: [Float: Int] = [:]
        for i in 0..<n {
            let v = abs(xs[i])
            var rank = lowerBound(sorted, v)
            if v == lowValue || v == highValue {
                rank += seenEqual[v, default: 0]
                seenEqual[v, default: 0] += 1
            }
            out.pointer[i] = (lo..<hi).contains(rank) ? xs[i] : 0
        }
        if rescale {
            var before = 0.0
            var after = 0.0
            for i in 0..<n {
                before += Double(abs(xs[i]))
                after += Double(abs(out.pointer[i]))
            }
            if before >= 1e-7, after >= 1e-7 {
                let factor = Float(before / after)
                for i in 0..<n { out.pointer[i] *= factor }
            }
        }
        if dtype != .f32 {
            for i in 0..<n { out.pointer[i] = DTypeConversion.round(out.pointer[i], to: dtype) }
        }
        return out
    }

    /// The number of elements of `sorted` that are less than `v`.
    static func lowerBound(_ sorted: [Float], _ v: Float) -> Int {
        var lo = 0
        var hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] < v { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
