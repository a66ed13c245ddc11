/// 32-bit keys whose unsigned order is the order a selection ranks elements by, computed from global element
/// indices of the current chunk.
protocol OrderKeys: Sendable {
    /// Calls `body(i, key)` for each element `i` of `range` (global indices), in increasing order.
    func forEach(_ range: Range<Int>, _ body: (Int, UInt32) -> Void)
}

/// Encodings of floats as order keys.
enum OrderKey {
    /// Orders like the values, NaN (any sign) above +∞, −0 just below +0.
    @inline(__always)
    static func total(_ x: Float) -> UInt32 {
        if x.isNaN { return .max }
        let bits = x.bitPattern
        return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
    }

    /// `total` of eight values at once: `~bits` for a negative value, `bits | 2³¹` otherwise, `UInt32.max` for NaN.
    @inline(__always)
    static func total(_ v: SIMD8<Float>) -> SIMD8<UInt32> {
        let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        let sign = unsafeBitCast(unsafeBitCast(bits, to: SIMD8<Int32>.self) &>> 31, to: SIMD8<UInt32>.self)
        return (bits ^ (sign | SIMD8(repeating: 0x8000_0000))).replacing(with: .max, where: v .!= v)
    }

    /// The value `total` encodes (NaN for the NaN key).
    static func value(ofTotal key: UInt32) -> Float {
        if key == .max { return .nan }
        return Float(bitPattern: key & 0x8000_0000 != 0 ? key & 0x7FFF_FFFF : ~key)
    }
}
