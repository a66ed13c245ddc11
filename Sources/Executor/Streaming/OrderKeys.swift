/// 32-bit keys whose unsigned order is the order a selection ranks elements by, computed from global element
/// indices of the current chunk.
protocol OrderKeys: Sendable {
    /// Calls `body(i, key)` for each element `i` of `range` (global indices), in increasing order.
    func forEach(_ range: Range<Int>, _ body: (Int, UInt32) -> Void)
}

/// Order keys that can also be computed eight at a time in vector lanes: the selections' loops that test many keys
/// against a few (a second pass's wanted buckets, a cut's boundary keys) read them so.
protocol VectorOrderKeys: OrderKeys {
    /// The keys of elements `i ..< i + 8` (global indices of the current chunk), lane j holding element `i + j`'s.
    func keys8(_ i: Int) -> SIMD8<UInt32>
}

extension VectorOrderKeys {
    /// Visits the keys of `range` in increasing order: `lanes(i, keys8(i))` for each run of eight elements from the
    /// start of `range`, then `single(i, key)` for the last few.
    @inline(__always)
    func forEachLanes(_ range: Range<Int>, lanes: (Int, SIMD8<UInt32>) -> Void, single: (Int, UInt32) -> Void) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            lanes(i, keys8(i))
            i += 8
        }
        forEach(i..<range.upperBound, single)
    }
}

/// Lane masks of 32-bit keys: all ones or zero per lane, computed by arithmetic so that they combine with values
/// by `&` (as `KeepTest` and `RandomMask` build theirs).
enum LaneMask {
    /// All ones in the lanes where `a` equals `b`, else zero (`d | −d` has its sign bit set exactly when `d ≠ 0`).
    @inline(__always)
    static func equal(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> SIMD8<UInt32> {
        let d = a ^ b
        return ((d | (SIMD8<UInt32>() &- d)) &>> 31) &- 1
    }

    /// All ones in the lanes where `a < b` (unsigned), else zero: the borrow out of `a − b` (Hacker's Delight 2-12).
    @inline(__always)
    static func below(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> SIMD8<UInt32> {
        let borrow = (~a & b) | (~(a ^ b) & (a &- b))
        return SIMD8<UInt32>() &- (borrow &>> 31)
    }

    /// Whether some lane of `mask` is nonzero: its four 64-bit halves or'd (the generic `max()` reduction was not
    /// inlined: a call per eight keys, 1.75% of `sce3`'s samples).
    @inline(__always)
    static func any(_ mask: SIMD8<UInt32>) -> Bool {
        let words = unsafeBitCast(mask, to: SIMD4<UInt64>.self)
        return (words[0] | words[1] | words[2] | words[3]) != 0
    }
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
