import IR

/// Model Stock (arXiv:2403.19522) as mergekit 0.1.5 computes it: the mean pairwise cosine of the fine-tunes'
/// offsets from the base sets how far their average is pulled from the base; per row with `filter_wise`.
public enum ModelStockKernel {
    /// `inputs[0]` is the base; `rowLength` is the length of one filter (the whole tensor unless filter-wise).
    public static func merge(_ inputs: [TensorBuffer], rowLength: Int, dtype: DType, parallel: Parallel) -> TensorBuffer {
        let count = inputs[0].count
        let n = inputs.count - 1
        let rows = rowLength > 0 ? count / rowLength : 0
        let p = SharedPointers(inputs: inputs.map { UnsafePointer($0.pointer) }, output: inputs[0].pointer)
        var tPerRow = [Double](repeating: 0, count: max(rows, 1))
        for r in 0..<rows {
            let start = r * rowLength
            func dot(_ i: Int, _ j: Int) -> Double {
                parallel.sum(count: rowLength) { range in
                    var s = 0.0
                    for k in range {
                        let base = Double(p.inputs[0][start + k])
                        s += (Double(p.inputs[i][start + k]) - base) * (Double(p.inputs[j][start + k]) - base)
                    }
                    return s
                }
            }
            var norms = [0.0]
            for i in 1...n { norms.append(dot(i, i).squareRoot()) }
            var cosSum = 0.0
            var pairs = 0
            for i in 1...n {
                for j in (i + 1)..<(n + 1) {
                    let c = dot(i, j) / max(norms[i] * norms[j], 1e-6)
                    cosSum += min(1, max(-1, c))
                    pairs += 1
                }
            }
            let cos = cosSum / Double(pairs)
            let denominator = 1 + Double(n - 1) * cos
            tPerRow[r] = abs(denominator) < 1e-6 ? 0 : Double(n) * cos / denominator
        }
        let ts = tPerRow
        let out = ElementwiseKernels.map(inputs, dtype: dtype, parallel: parallel) { p, i in
            let t = ts[rowLength > 0 ? i / rowLength : 0]
            var sum = 0.0
            for k in 1...n { sum += Double(p.inputs[k][i]) }
            return Float(t * (sum / Double(n)) + (1 - t) * Double(p.inputs[0][i]))
        }
        withExtendedLifetime(inputs) {}
        return out
    }
}
