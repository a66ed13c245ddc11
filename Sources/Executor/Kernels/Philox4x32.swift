/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
/// generator, so the draw for an element depends only on (seed, stream, element index), never on threads, chunks
/// or blocks.
///
/// Element draws (`draw(stream:index:)`, `fill(stream:_:into:)`) are 32-bit words laid out for SIMD lanes: the
/// elements `32g ..< 32g + 32` come from the eight blocks with counters `(8g + lane, stream)`, lane 0…7, and
/// element `32g + 8w + lane` is word `w` of block `lane`. Every element thus has a counter and word of its own, and
/// eight blocks are computed side by side in vector registers, a quarter of a block per element.
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

    /// The 32 draws of element group `group` (elements `32·group ..< 32·group + 32`) of `stream`: word `w` holds
    /// elements `32·group + 8w + lane`. The eight blocks' rounds run in SIMD lanes of 64 bits whose low halves
    /// hold the 32-bit words (a multiply of two such lanes is one `pmuludq`; the high halves are never read).
    @inline(__always)
    public func group(_ group: UInt64, stream: UInt64) -> Draws {
        var a = Lanes(group: group, stream: stream)
        var k0 = UInt64(key.0), k1 = UInt64(key.1)
        for round in 0..<10 {
            if round > 0 { Self.bump(&k0, &k1) }
            a.round(k0, k1)
        }
        return a.draws
    }

    /// The draws of element groups `group` and `group + 1` of `stream` (`self.group` of each): the two groups' rounds
    /// are interleaved, so that one group's multiplies run while the other's wait for their results (a round is a
    /// chain of dependent instructions; one group alone leaves the vector units idle most of the time).
    @inline(__always)
    public func groupPair(_ group: UInt64, stream: UInt64) -> (Draws, Draws) {
        var a = Lanes(group: group, stream: stream), b = Lanes(group: group &+ 1, stream: stream)
        var k0 = UInt64(key.0), k1 = UInt64(key.1)
        for round in 0..<10 {
            if round > 0 { Self.bump(&k0, &k1) }
            a.round(k0, k1)
            b.round(k0, k1)
        }
        return (a.draws, b.draws)
    }

    /// Philox's key schedule: the Weyl increments of one round, modulo 2³².
    @inline(__always)
    private static func bump(_ k0: inout UInt64, _ k1: inout UInt64) {
        k0 = (k0 &+ 0x9E37_79B9) & 0xFFFF_FFFF
        k1 = (k1 &+ 0xBB67_AE85) & 0xFFFF_FFFF
    }

    /// The four counter words of one element group's eight blocks, in the low halves of 64-bit lanes.
    private struct Lanes {
        typealias W = SIMD8<UInt64>
        var c0, c1, c2, c3: W

        @inline(__always)
        init(group: UInt64, stream: UInt64) {
            let first = group &<< 3
            c0 = W(repeating: first & 0xFFFF_FFFF) &+ W(0, 1, 2, 3, 4, 5, 6, 7)
            c1 = W(repeating: first >> 32 & 0xFFFF_FFFF)
            c2 = W(repeating: stream & 0xFFFF_FFFF)
            c3 = W(repeating: stream >> 32)
        }

        /// One Philox round with round key `(k0, k1)`.
        @inline(__always)
        mutating func round(_ k0: UInt64, _ k1: UInt64) {
            let low = W(repeating: 0xFFFF_FFFF)
            let p0 = (c0 & low) &* W(repeating: 0xD251_1F53)
            let p1 = (c2 & low) &* W(repeating: 0xCD9E_8D57)
            c0 = (p1 &>> 32) ^ c1 ^ W(repeating: k0)
            c1 = p1
            c2 = (p0 &>> 32) ^ c3 ^ W(repeating: k1)
            c3 = p0
        }

        /// The 32-bit words: the low halves of the 64-bit lanes, the even 32-bit lanes of the same bits (one shuffle;
        /// the generic SIMD conversions are not vectorized).
        @inline(__always)
        var draws: Draws {
            @inline(__always) func words(_ v: W) -> SIMD8<UInt32> {
                unsafeBitCast(v, to: SIMD16<UInt32>.self).evenHalf
            }
            return Draws(words: (words(c0), words(c1), words(c2), words(c3)))
        }
    }

    /// The draw of element `index` of `stream`: a uniform 32-bit word (see the layout above).
    public func draw(stream: UInt64, index: Int) -> UInt32 {
        let i = UInt64(UInt(bitPattern: index))
        let counter = (i >> 5) << 3 | (i & 7)
        let r = block((UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32),
                       UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)))
        switch (i >> 3) & 3 {
        case 0: return r.0
        case 1: return r.1
        case 2: return r.2
        default: return r.3
        }
    }

    /// Writes the draws of elements `range` of `stream` to `out` (`out[0]` is element `range.lowerBound`'s).
    @inline(__always)
    public func fill(stream: UInt64, _ range: Range<Int>, into out: UnsafeMutablePointer<UInt32>) {
        forEachGroup(stream: stream, range, whole: { start, draws in
            let o = UnsafeMutableRawPointer(out + (start - range.lowerBound))
            o.storeBytes(of: draws.words.0, toByteOffset: 0, as: SIMD8<UInt32>.self)
            o.storeBytes(of: draws.words.1, toByteOffset: 32, as: SIMD8<UInt32>.self)
            o.storeBytes(of: draws.words.2, toByteOffset: 64, as: SIMD8<UInt32>.self)
            o.storeBytes(of: draws.words.3, toByteOffset: 96, as: SIMD8<UInt32>.self)
        }, part: { e, draw in out[e - range.lowerBound] = draw })
    }

    /// The draws of elements `range` of `stream`, in element order: `whole(start, draws)` for each element group
    /// inside `range` (`start` its first element; two groups computed at once where two follow, `groupPair`), and
    /// `part(e, draw)` for each element of `range` in a group it covers only partly.
    @inline(__always)
    public func forEachGroup(stream: UInt64, _ range: Range<Int>, whole: (Int, Draws) -> Void,
                             part: (Int, UInt32) -> Void) {
        var i = range.lowerBound
        while i < range.upperBound {
            let g = i >> 5, start = g << 5
            if i == start, start + 64 <= range.upperBound {
                let (first, second) = groupPair(UInt64(g), stream: stream)
                whole(start, first)
                whole(start + 32, second)
                i = start + 64
            } else if i == start, start + 32 <= range.upperBound {
                whole(start, group(UInt64(g), stream: stream))
                i = start + 32
            } else {
                let draws = group(UInt64(g), stream: stream)
                let end = min(range.upperBound, start + 32)
                for e in i..<end { part(e, draws[e - start]) }
                i = end
            }
        }
    }

    /// The 32 draws of one element group, as four words of eight lanes.
    public struct Draws {
        public var words: (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>)

        /// The draw of element `offset` (0..<32) of the group.
        @inline(__always)
        public subscript(offset: Int) -> UInt32 {
            let lane = offset & 7
            switch offset >> 3 {
            case 0: return words.0[lane]
            case 1: return words.1[lane]
            case 2: return words.2[lane]
            default: return words.3[lane]
            }
        }
    }
}
