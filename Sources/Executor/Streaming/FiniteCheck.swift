import IR

/// Whether chunks of f32 values hold a value that is, or becomes once stored in a dtype, infinite or NaN: one
/// integer max over the values' magnitudes' bit patterns (vectorized), no buffers.
enum FiniteCheck {
    /// The smallest magnitude bit pattern (an f32's bits without the sign) that is stored in `dtype` as ±Inf or NaN:
    /// Inf itself for f32 and f64; the halfway points past the largest finite value for f16 (65520), bf16
    /// (0x7F7F8000) and float8 e5m2 (61440), which round to even, that is to Inf; float8 e4m3fn saturates, so only
    /// NaN and Inf inputs are non-finite there.
    static func limitBits(for dtype: DType) -> UInt32 {
        switch dtype {
        case .f16: return Float(65520).bitPattern
        case .bf16: return 0x7F7F_8000
        case .f8e5m2: return Float(61440).bitPattern
        default: return Float.infinity.bitPattern
        }
    }

    /// True when any of `count` values at `values` has a magnitude whose bits reach `limitBits`.
    static func exceeds(_ values: UnsafePointer<Float>, count: Int, limitBits: UInt32) -> Bool {
        let bits = UnsafeRawPointer(values).assumingMemoryBound(to: UInt32.self)
        var largest: UInt32 = 0
        for i in 0..<count { largest = max(largest, bits[i] & 0x7FFF_FFFF) }
        return largest >= limitBits
    }

    /// True when any of `count` bf16 values (bit patterns at `values`) is infinite or NaN: what `exceeds` with
    /// `Float.infinity.bitPattern` finds in their f32 decoding, read from the stored halves.
    static func bf16NonFinite(_ values: UnsafePointer<UInt16>, count: Int) -> Bool {
        var largest: UInt16 = 0
        for i in 0..<count { largest = max(largest, values[i] & 0x7FFF) }
        return largest >= 0x7F80
    }
}
