/// Magnitude order: `|x|`'s bits (sign cleared) order like the magnitudes, NaN above +∞.
enum MagnitudeRank {
    @inline(__always)
    static func key(_ x: Float) -> UInt32 { x.bitPattern & 0x7FFF_FFFF }
}
