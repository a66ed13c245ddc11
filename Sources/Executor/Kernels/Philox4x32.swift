/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"): a counter-based generator,
/// so the draw for an element depends only on (seed, stream, element index), never on threads or blocks.
public struct Philox4x32: Sendable {
    /// The 64-bit key (the user's seed).
    public var key: (UInt32, UInt32)

    public init(seed: UInt64) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// The 10-round block function on one 128-bit counter.
    public func block(_ counter: (UInt32, UInt32, UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.0 &+= 0x9E37_79B9
                k.1 &+= 0xBB67_AE85
            }
            let p0 = UInt64(0xD251_1F53) &* UInt64(c.0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c.2)
            c = (UInt32(truncatingIfNeeded: p1 >> 32) ^ c.1 ^ k.0, UInt32(truncatingIfNeeded: p1),
                 UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k.1, UInt32(truncatingIfNeeded: p0))
        }
        return c
    }

    /// A uniform double in [0, 1) with 53 random bits for element `index` of stream `stream`.
    @inline(__always)
    public func uniform(stream: UInt64, index: Int) -> Double {
        let i = UInt64(UInt(bitPattern: index))
        let r = block((UInt32(truncatingIfNeeded: i), UInt32(truncatingIfNeeded: i >> 32),
                       UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)))
        let bits = (UInt64(r.0) << 32 | UInt64(r.1)) >> 11
        return Double(bits) * 0x1p-53
    }
}
