import IR

/// RAM and RAM+ (mergekit's `ram` / `ramplus_tl`) over task vectors: an element counts for a task vector when
/// its magnitude exceeds `epsilon`; elements only one vector has are taken as they are (RAM+ scales them by
/// that vector's λ), elements several have are averaged over those, all others are zero.
public enum RamKernel {
    public static func merge(_ deltas: [TensorBuffer], epsilon: Double, dtype: DType,
                             parallel: Parallel) -> TensorBuffer {
        merge(deltas, uniqueScale: deltas.map { _ in 1 }, epsilon: epsilon, dtype: dtype, parallel: parallel)
    }

    public static func mergePlus(_ deltas: [TensorBuffer], r: Double, alpha: Double, epsilon: Double, dtype: DType,
                                 parallel: Parallel) -> TensorBuffer {
        let lambdas = plusScales(deltas, r: r, alpha: alpha, epsilon: epsilon, dtype: dtype, parallel: parallel)
        return merge(deltas, uniqueScale: lambdas, epsilon: epsilon, dtype: dtype, parallel: parallel)
    }

    /// RAM+'s per-vector `λ = 1 + r · clamp(shared / max(unique, epsilon), 0, alpha)`, where `shared` and `unique`
    /// count the vector's significant elements that other vectors share or not.
    static func plusScales(_ deltas: [TensorBuffer], r: Double, alpha: Double, epsilon: Double, dtype: DType,
                           parallel: Parallel) -> [Double] {
        let k = deltas.count
        let threshold = self.threshold(epsilon, dtype)
        let p = SharedPointers(inputs: deltas.map { UnsafePointer($0.pointer) }, output: deltas[0].pointer)
        let counts = parallel.sums(count: deltas[0].count, width: 2 * k) { range, acc in
            for i in range {
                var contributors = 0
                for j in 0..<k where abs(p.inputs[j][i]) > threshold { contributors += 1 }
                guard contributors > 0 else { continue }
                let slot = contributors == 1 ? k : 0
                for j in 0..<k where abs(p.inputs[j][i]) > threshold { acc[slot + j] += 1 }
            }
        }
        withExtendedLifetime(deltas) {}
        return (0..<k).map { j in
            let rho = counts[j] / max(counts[k + j], epsilon)
            return 1 + r * min(max(rho, 0), alpha)
        }
    }

    private static func merge(_ deltas: [TensorBuffer], uniqueScale: [Double], epsilon: Double, dtype: DType,
                              parallel: Parallel) -> TensorBuffer {
        let threshold = self.threshold(epsilon, dtype)
        let k = deltas.count
        return ElementwiseKernels.map(deltas, dtype: dtype, parallel: parallel) { p, i in
            var contributors = 0
            var sum = 0.0
            var last = 0
            for j in 0..<k where abs(p.inputs[j][i]) > threshold {
                contributors += 1
                sum += Double(p.inputs[j][i])
                last = j
            }
            switch contributors {
            case 0: return 0
            case 1: return Float(sum * uniqueScale[last])
            default: return Float(sum / Double(contributors))
            }
        }
    }

    /// `epsilon` as torch compares it with a tensor of the compute dtype (rounded to that dtype).
    static func threshold(_ epsilon: Double, _ dtype: DType) -> Float {
        ElementwiseKernels.rounded(Float(epsilon), dtype)
    }
}
