import IR

/// DARE's random pruning (mergekit's `bernoulli`): each element survives with probability `density`, decided by
/// a Philox draw for (seed, stream key, element index), so the result is the same for any thread count.
public enum RandomPruneKernel {
    public static func prune(_ x: TensorBuffer, density: Double, rescale: Bool, seed: UInt64, key: UInt64,
                             dtype: DType, parallel: Parallel) -> TensorBuffer {
        let rng = Philox4x32(seed: seed)
        let out = TensorBuffer(count: x.count)
        let p = SharedPointers(inputs: [UnsafePointer(x.pointer)], output: out.pointer)
        parallel.forEachBlock(count: x.count) { range in
            for i in range {
                p.output[i] = rng.uniform(stream: key, index: i) < density ? p.inputs[0][i] : 0
            }
        }
        finish(x, out, rescale: rescale, dtype: dtype, parallel: parallel)
        return out
    }

    /// Rescales `out` to `x`'s L1 norm when asked, then rounds it to `dtype`.
    static func finish(_ x: TensorBuffer, _ out: TensorBuffer, rescale: Bool, dtype: DType, parallel: Parallel) {
        if rescale { MagnitudePruneKernel.rescaleToL1(of: x, out, parallel: parallel) }
        guard dtype != .f32 else { return }
        let p = SharedPointers(inputs: [], output: out.pointer)
        parallel.forEachBlock(count: out.count) { range in
            for i in range { p.output[i] = DTypeConversion.round(p.output[i], to: dtype) }
        }
    }
}
