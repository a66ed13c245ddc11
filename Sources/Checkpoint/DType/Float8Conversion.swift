/// Exact conversions between `Float` and the two 8-bit float formats torch saves, bit for bit as torch's
/// `Tensor.to()` does them (c10 `Float8_e4m3fn.h` and `Float8_e5m2.h`): decoding is exact (every float8 value is
/// an f32 value), encoding rounds to nearest even.
public enum Float8Conversion {
    /// The `Float` each `float8_e4m3fn` bit pattern denotes: ±(1 + m/8)·2^(e−7), subnormals (m/8)·2^−6, and NaN for
    /// S.1111.111 (the f32 NaN keeps the mantissa bits, as torch's `fp8e4m3fn_to_fp32_value` does). No infinities.
    public static let e4m3Table: [Float] = (0..<256).map { decodeE4M3(UInt8($0)) }

    /// The `Float` each `float8_e5m2` bit pattern denotes: the upper byte of an IEEE half (±Inf, NaNs made quiet,
    /// as torch converts them through `float16`).
    public static let e5m2Table: [Float] = (0..<256).map { HalfPrecisionKernels.toFloat(UInt16($0) << 8) }

    private static func decodeE4M3(_ byte: UInt8) -> Float {
        let sign: UInt32 = UInt32(byte & 0x80) << 24
        let exponent = Int(byte >> 3) & 0xF
        let mantissa = UInt32(byte & 0x7)
        if exponent == 0xF && mantissa == 0x7 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 20))
        }
        let magnitude: Float = exponent == 0
            ? Float(mantissa) * 0x1p-9
            : Float(bitPattern: UInt32(exponent - 7 + 127) << 23 | mantissa << 20)
        return Float(bitPattern: sign | magnitude.bitPattern)
    }

    /// The nearest `float8_e4m3fn` to `x` (ties to even), saturating: magnitudes that round past 448 (±Inf
    /// included) become ±448 (0x7E), NaN becomes 0x7F with its sign, as torch 2.15's CPU `.to(torch.float8_e4m3fn)`
    /// does (checked on every fixture sample, `Tests/Fixtures/pytorch/float8`).
    @inline(__always)
    public static func floatToE4M3(_ x: Float) -> UInt8 {
        var bits = x.bitPattern
        let sign = bits & 0x8000_0000
        bits ^= sign
        let result: UInt8
        if bits > 0x7F80_0000 {
            result = 0x7F
        } else if bits >= 1087 << 20 {
            result = 0x7E
        } else if bits < 121 << 23 {
            // Below 2^-6 (the smallest normal): adding 2^14, whose f32 ulp is 2^-9 (the subnormal step), rounds to
            // that step (ties to even) and leaves the subnormal's bits at the bottom.
            let denormMagic: UInt32 = 141 << 23
            let sum = (Float(bitPattern: bits) + Float(bitPattern: denormMagic)).bitPattern
            result = UInt8(truncatingIfNeeded: sum &- denormMagic)
        } else {
            let mantissaOdd = (bits >> 20) & 1
            bits = bits &+ (UInt32(bitPattern: Int32(7 - 127)) << 23) &+ 0x7FFFF &+ mantissaOdd
            let rounded = UInt8(truncatingIfNeeded: bits >> 20)
            result = rounded == 0x7F ? 0x7E : rounded  // rounding up past 448 saturates
        }
        return result | UInt8(truncatingIfNeeded: sign >> 24)
    }

    /// The nearest `float8_e5m2` to `x` (ties to even). Magnitudes from 61440 up overflow to ±Inf (0x7C); NaN becomes
    /// 0x7F: torch's `fp8e5m2_from_fp32_value`.
    @inline(__always)
    public static func floatToE5M2(_ x: Float) -> UInt8 {
        var bits = x.bitPattern
        let sign = bits & 0x8000_0000
        bits ^= sign
        let result: UInt8
        if bits >= 143 << 23 {
            result = bits > 255 << 23 ? 0x7F : 0x7C
        } else if bits < 113 << 23 {
            // Below 2^-14: adding 2^7, whose f32 ulp is 2^-16 (the subnormal step), rounds to that step.
            let denormMagic: UInt32 = 134 << 23
            let sum = (Float(bitPattern: bits) + Float(bitPattern: denormMagic)).bitPattern
            result = UInt8(truncatingIfNeeded: sum &- denormMagic)
        } else {
            let mantissaOdd = (bits >> 21) & 1
            bits = bits &+ (UInt32(bitPattern: Int32(15 - 127)) << 23) &+ 0xFFFFF &+ mantissaOdd
            result = UInt8(truncatingIfNeeded: bits >> 21)
        }
        return result | UInt8(truncatingIfNeeded: sign >> 24)
    }
}
