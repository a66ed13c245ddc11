import IR

/// Element-by-element kernels: casts, scaling, differences and sums.
public enum ElementwiseKernels {
    /// Rounds `x` to `dtype` (identity for f32).
    @inline(__always)
    static func rounded(_ x: Float, _ dtype: DType) -> Float {
        dtype == .f32 ? x : DTypeConversion.round(x, to: dtype)
    }

    public static func cast(_ x: TensorBuffer, to dtype: DType, parallel: Parallel) -> TensorBuffer {
        map([x], dtype: dtype, parallel: parallel) { p, i in p.inputs[0][i] }
    }

    public static func scale(_ x: TensorBuffer, by s: Double, dtype: DType, parallel: Parallel) -> TensorBuffer {
        let f = Float(s)
        return map([x], dtype: dtype, parallel: parallel) { p, i in p.inputs[0][i] * f }
    }

    public static func sub(_ a: TensorBuffer, _ b: TensorBuffer, dtype: DType, parallel: Parallel) -> TensorBuffer {
        map([a, b], dtype: dtype, parallel: parallel) { p, i in p.inputs[0][i] - p.inputs[1][i] }
    }

    public static func add(_ a: TensorBuffer, _ b: TensorBuffer, dtype: DType, parallel: Parallel) -> TensorBuffer {
        map([a, b], dtype: dtype, parallel: parallel) { p, i in p.inputs[0][i] + p.inputs[1][i] }
    }

    /// Applies `f` to every element index and rounds to `dtype`.
    static func map(_ xs: [TensorBuffer], dtype: DType, parallel: Parallel,
                    _ f: @escaping @Sendable (SharedPointers, Int) -> Float) -> TensorBuffer {
        let count = xs[0].count
        let out = TensorBuffer(count: count)
        let p = SharedPointers(inputs: xs.map { UnsafePointer($0.pointer) }, output: out.pointer)
        parallel.forEachBlock(count: count) { range in
            for i in range { p.output[i] = rounded(f(p, i), dtype) }
        }
        withExtendedLifetime(xs) {}
        return out
    }
}
