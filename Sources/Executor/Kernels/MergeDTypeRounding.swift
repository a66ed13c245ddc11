import IR

/// Rounding eight f32 lanes to a merge dtype, for kernels that follow mergekit's per-op rounding of tensors of
/// that dtype (PyTorch's CPU bf16/f16 elementwise ops compute in f32 and round each result; its sums over a
/// dimension accumulate in f32 and round once).
enum MergeDTypeRounding {
    /// `v` rounded to the nearest `dtype` value (ties to even; NaN stays NaN); f32 as is.
    @inline(__always)
    static func round(_ v: SIMD8<Float>, to dtype: DType) -> SIMD8<Float> {
        switch dtype {
        case .f32:
            return v
        case .bf16:
            let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self)
            let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) & 0xFFFF_0000
            let quietNaN = (bits | 0x0040_0000) & 0xFFFF_0000
            let nan = (bits & 0x7FFF_FFFF) .> 0x7F80_0000
            return unsafeBitCast(rounded.replacing(with: quietNaN, where: nan), to: SIMD8<Float>.self)
        case .f16:
            return SIMD8<Float>(SIMD8<Float16>(v))
        }
    }
}
