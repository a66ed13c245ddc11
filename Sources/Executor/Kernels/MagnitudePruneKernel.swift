/// The whole-tensor L1 rescaling of pruned tensors (random pruning's whole-tensor kernel still uses it).
enum MagnitudePruneKernel {
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
