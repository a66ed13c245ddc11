import IR

#if !_endian(little)
#error("safetensors I/O assumes a little-endian host")
#endif

/// Exact conversions between `Float` and the storage types: round-to-nearest-even, quiet NaNs, ±Inf and subnormals
/// kept, as torch's `Tensor.to()` converts.
public enum DTypeConversion {
    /// The `Float` a bfloat16 bit pattern denotes (exact: bf16 is the upper half of an f32).
    @inlinable @inline(__always)
    public static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// The nearest bfloat16 to `x` (ties to even); NaN becomes a quiet NaN of the same sign.
    @inlinable @inline(__always)
    public static func floatToBF16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let quietNaN = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        let lowestKeptBit = (bits >> 16) & 1
        let rounded = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ lowestKeptBit) >> 16)
        return (bits & 0x7FFF_FFFF) > 0x7F80_0000 ? quietNaN : rounded
    }

    /// The `Float` an IEEE half-precision bit pattern denotes (exact).
    @inlinable @inline(__always)
    public static func f16ToFloat(_ bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    /// The nearest IEEE half to `x` (ties to even, overflow to ±Inf); NaN becomes a quiet NaN.
    @inlinable @inline(__always)
    public static func floatToF16(_ x: Float) -> UInt16 {
        Float16(x).bitPattern
    }

    /// The value `x` has after a round trip through `dtype`: identity for f32 and f64; nearest-even rounding for
    /// the 16- and 8-bit floats; for integers and BOOL, `encode`'s conversion (truncation, saturation) and back.
    @inlinable
    public static func round(_ x: Float, to dtype: DType) -> Float {
        switch dtype {
        case .f32, .f64: return x
        case .f16: return Float(Float16(x))
        case .bf16: return bf16ToFloat(floatToBF16(x))
        default: return roundThroughStorage(x, dtype)
        }
    }

    /// `x` encoded as one `dtype` element and decoded again.
    @usableFromInline
    static func roundThroughStorage(_ x: Float, _ dtype: DType) -> Float {
        var value = x
        var stored: UInt64 = 0
        var result: Float = 0
        withUnsafeMutableBytes(of: &stored) { bytes in
            encode(&value, count: 1, as: dtype, into: bytes.baseAddress!)
            decode(UnsafeRawPointer(bytes.baseAddress!), dtype: dtype, count: 1, into: &result)
        }
        return result
    }
}
