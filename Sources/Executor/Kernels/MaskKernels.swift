import IR

/// Masks: SCE's variance top-k selection.
public enum MaskKernels {
    /// 1 for the `k = ⌊nonzero · fraction⌋` elements with the largest population variance across `xs`
    /// (ties broken by lower index), 0 elsewhere; all ones when `fraction ≥ 1`, all zeros when `≤ 0`.
    public static func varianceTopK(_ xs: [TensorBuffer], fraction: Double, parallel: Parallel) -> TensorBuffer {
        let n = xs[0].count
        let out = TensorBuffer(count: n)
        if fraction >= 1 {
            out.pointer.initialize(repeating: 1, count: n)
            return out
        }
        out.pointer.initialize(repeating: 0, count: n)
        guard fraction > 0, n > 0 else { return out }
        let variance = TensorBuffer(count: n)
        let m = xs.count
        let p = SharedPointers(inputs: xs.map { UnsafePointer($0.pointer) }, output: variance.pointer)
        parallel.forEachBlock(count: n) { range in
            for i in range {
                var mean = 0.0
                for k in 0..<m { mean += Double(p.inputs[k][i]) }
                mean /= Double(m)
                var v = 0.0
                for k in 0..<m {
                    let d = Double(p.inputs[k][i]) - mean
                    v += d * d
                }
                p.output[i] = Float(v / Double(m))
            }
        }
        withExtendedLifetime(xs) {}
        var order: [Int] = []
        order.reserveCapacity(n)
        for i in 0..<n where variance.pointer[i] != 0 { order.append(i) }
        // mergekit multiplies the count by the fraction in float32 before truncating.
        let k = min(order.count, Int(Float(order.count) * Float(fraction)))
        guard k > 0 else { return out }
        let v = variance.pointer
        order.sort { v[$0] != v[$1] ? v[$0] > v[$1] : $0 < $1 }
        for i in order.prefix(k) { out.pointer[i] = 1 }
        return out
    }
}
