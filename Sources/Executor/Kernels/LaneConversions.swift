/// Conversions between eight f32 lanes and eight f64 lanes, written lane by lane so that each compiles to one
/// vector instruction (`vcvtps2pd`, `vcvtpd2ps`): Swift's generic SIMD conversions run lane by lane in scalar code.
/// Both are exact widenings or the usual f64 → f32 rounding, lane for lane as `Double(_:)` and `Float(_:)` give.
enum LaneConversions {
    /// The eight lanes of `v` as f64.
    @inline(__always)
    static func wide(_ v: SIMD8<Float>) -> SIMD8<Double> {
        SIMD8(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3]),
              Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7]))
    }

    /// `x[i ..< i + 8]` (an unaligned load) as f64.
    @inline(__always)
    static func wide(_ x: UnsafePointer<Float>, _ i: Int) -> SIMD8<Double> {
        wide(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
    }

    /// The eight lanes of `v` rounded to f32.
    @inline(__always)
    static func narrow(_ v: SIMD8<Double>) -> SIMD8<Float> {
        SIMD8(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]))
    }

    /// Calls `body(i, lanes)` for the elements of `range` eight at a time: `lanes` is the literal 8 for every whole
    /// group (so that the `load`s and `store`s `body` inlines are single vector instructions, not lane-count tests),
    /// then once with the remaining count, if any.
    @inline(__always)
    static func forEachGroup(_ range: Range<Int>, _ body: (_ i: Int, _ lanes: Int) -> Void) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            body(i, 8)
            i += 8
        }
        if i < range.upperBound { body(i, range.upperBound - i) }
    }

    /// `x[i ..< i + lanes]` (`lanes` at most 8; the other lanes 0): one unaligned load when `lanes` is 8.
    @inline(__always)
    static func load(_ x: UnsafePointer<Float>, _ i: Int, _ lanes: Int) -> SIMD8<Float> {
        if lanes == 8 { return UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) }
        var v = SIMD8<Float>()
        for l in 0..<lanes { v[l] = x[i + l] }
        return v
    }

    /// Stores lanes `0 ..< lanes` of `v` (`lanes` at most 8) to `x[i ..< i + lanes]`: one unaligned store when
    /// `lanes` is 8.
    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ x: UnsafeMutablePointer<Float>, _ i: Int, _ lanes: Int) {
        if lanes == 8 { UnsafeMutableRawPointer(x + i).storeBytes(of: v, as: SIMD8<Float>.self); return }
        for l in 0..<lanes { x[i + l] = v[l] }
    }

    /// `|v|` lane by lane, by clearing the sign bit (NaN stays NaN).
    @inline(__always)
    static func magnitude(_ v: SIMD8<Float>) -> SIMD8<Float> {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
    }

    /// `|v|` lane by lane, by clearing the sign bit (NaN stays NaN).
    @inline(__always)
    static func magnitude(_ v: SIMD8<Double>) -> SIMD8<Double> {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt64>.self) & 0x7FFF_FFFF_FFFF_FFFF, to: SIMD8<Double>.self)
    }
}
