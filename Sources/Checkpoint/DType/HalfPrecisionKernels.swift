/// Branch-free IEEE half ⇄ float conversions for the bulk loops: bit-identical to `Float16` conversion, but vectorizable.
enum HalfPrecisionKernels {
    /// The `Float` a half bit pattern denotes; a NaN keeps its payload and becomes quiet, as `Float(Float16)` does.
    @inline(__always)
    static func toFloat(_ half: UInt16) -> Float {
        let bits = UInt32(half)
        let sign = (bits & 0x8000) << 16
        let magnitude = (bits & 0x7FFF) << 13
        let exponent = magnitude & 0x0F80_0000
        let normal = magnitude &+ 0x3800_0000
        let quietBit: UInt32 = magnitude > 0x0F80_0000 ? 0x0040_0000 : 0
        let infinityOrNaN = (normal &+ 0x3800_0000) | quietBit
        // A subnormal half is mantissa·2^-24: place the mantissa under a 2^-14 float and subtract 2^-14 (exact).
        let subnormal = (Float(bitPattern: magnitude &+ 0x3880_0000) - Float(bitPattern: 0x3880_0000)).bitPattern
        let result = exponent == 0x0F80_0000 ? infinityOrNaN : (exponent == 0 ? subnormal : normal)
        return Float(bitPattern: result | sign)
    }

    /// The nearest half to `x` (ties to even, overflow to ±Inf); NaN becomes a quiet NaN with the payload's top bits.
    @inline(__always)
    static func fromFloat(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits & 0x8000_0000) >> 16)
        let magnitude = bits & 0x7FFF_FFFF
        let nan = 0x7E00 | UInt16(truncatingIfNeeded: (magnitude >> 13) & 0x01FF)
        // Below 2^-14 the half is subnormal: adding 0.5 aligns its 10 mantissa bits at the bottom, rounding to nearest even.
        let subnormalMagic: UInt32 = 0x3F00_0000
        let subnormal = UInt16(truncatingIfNeeded:
            (Float(bitPattern: magnitude) + Float(bitPattern: subnormalMagic)).bitPattern &- subnormalMagic)
        // Normal: rebias the exponent and add the round-to-nearest-even bias; overflow carries into the Inf pattern.
        let lowestKeptBit = (magnitude >> 13) & 1
        let normal = UInt16(truncatingIfNeeded: (magnitude &- 0x3800_0000 &+ 0x0FFF &+ lowestKeptBit) >> 13)
        let finite = magnitude < 0x3880_0000 ? subnormal : normal
        let result = magnitude > 0x7F80_0000 ? nan : (magnitude >= 0x4780_0000 ? 0x7C00 : finite)
        return result | sign
    }
}
