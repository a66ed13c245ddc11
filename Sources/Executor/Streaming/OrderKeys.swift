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

    /// The value `total` encodes (NaN for the NaN key).
    static func value(ofTotal key: UInt32) -> Float {
        if key == .max { return .nan }
        return Float(bitPattern: key & 0x8000_0000 != 0 ? key & 0x7FFF_FFFF : ~key)
    }
}
