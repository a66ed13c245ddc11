/// DELLA's MAGPRUNE decision (mergekit's `della_magprune`): along dimension 1, the element of ascending
/// magnitude rank r among L is kept with probability `density − epsilon + r · (2·epsilon / (L−1))` (equal
/// magnitudes ranked by index); draws are Philox for (seed, stream key, element index), like DARE's, and an element
/// is kept when its 32-bit draw `u` has `u / 2³² <` that probability. A row of one element (where mergekit divides
/// 0 by 0) gets probability `density`.
///
/// Ranks come from counting, not comparing: the magnitudes' bit patterns order them, so a row whose patterns (less
/// the trailing zero bits they all share, 16 for bf16 values) span at most `DellaScratch.countSlots` values is
/// ranked by one count per value (zeros counted apart, below the rest), a prefix sum over that span and one pass in
/// index order; any other row by a stable least-significant-digit radix sort, a byte per pass, skipping the bytes
/// the whole row agrees on. Both give each element its rank among the row's magnitudes, ties by index.
struct DellaRule: Sendable {
    let rows: DellaRows
    let rng: Philox4x32
    let key: UInt64
    let density: Double
    let epsilon: Double

    /// Decides row `row` of `x` (global indices) with `scratch` (`DellaScratch.rowWords(length:)` words) and calls
    /// `body(i, keep)` for each of its elements, in index order.
    @inline(__always)
    func decide(row: Int, x: UnsafePointer<Float>, scratch: UnsafeMutablePointer<UInt32>, _ body: (Int, Bool) -> Void) {
        let start = rows.start(of: row), stride = rows.inner, length = rows.length
        let ranks = Self.rank(x + start, stride: stride, length: length, scratch: scratch)
        // The draws go where the keys were (`rank` no longer needs them).
        let draws = scratch
        if stride == 1 {
            rng.fill(stream: key, start..<(start + length), into: draws)
        } else {
            for k in 0..<length { draws[k] = rng.draw(stream: key, index: start + k * stride) }
        }
        let scale = 0x1p32
        guard length > 1 else {
            for k in 0..<length { body(start + k * stride, Double(draws[k]) < density * scale) }
            return
        }
        let low = (density - epsilon) * scale
        let step = 2 * epsilon / Double(length - 1) * scale
        for k in 0..<length {
            body(start + k * stride, Double(draws[k]) < low + Double(ranks[k]) * step)
        }
    }

    /// The keep probability of ascending rank `rank` (0-based) in a row of `length` (the threshold `decide` compares
    /// `u` with, divided by 2³²).
    static func probability(rank: Int, length: Int, density: Double, epsilon: Double) -> Double {
        length > 1 ? density - epsilon + Double(rank) * (2 * epsilon / Double(length - 1)) : density
    }

    /// The ascending magnitude rank (ties by position) of each position `0..<length` of the row `x[0]`,
    /// `x[stride]`, …, returned as a pointer into `scratch` (`DellaScratch.rowWords(length:)` words: the keys (or,
    /// when counting, their slots), two rows of positions or ranks, the count slots).
    @inline(__always)
    static func rank(_ x: UnsafePointer<Float>, stride: Int, length: Int,
                     scratch: UnsafeMutablePointer<UInt32>) -> UnsafeMutablePointer<UInt32> {
        let keys = scratch
        var source = scratch + length, target = scratch + 2 * length
        let counts = scratch + 3 * length
        // The keys and their OR, AND, largest and smallest nonzero (`key − 1` wraps 0 to the largest): branch-free,
        // so that contiguous rows are read in vector registers.
        var any: UInt32 = 0, all: UInt32 = .max, most: UInt32 = 0, leastBelow: UInt32 = .max
        @inline(__always) func note(_ key: UInt32) {
            any |= key
            all &= key
            most = max(most, key)
            leastBelow = min(leastBelow, key &- 1)
        }
        if stride == 1 {
            let bits = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
            for k in 0..<length {
                let key = bits[k] & 0x7FFF_FFFF
                keys[k] = key
                note(key)
            }
        } else {
            for k in 0..<length {
                let key = x[k * stride].bitPattern & 0x7FFF_FFFF
                keys[k] = key
                note(key)
            }
        }
        let least = leastBelow &+ 1
        let ranks = source
        if any == all {
            for k in 0..<length { ranks[k] = UInt32(k) }
            return ranks
        }
        // Counting: slot 0 for zeros, slot 1 + (key >> shift) − lowest for the others.
        let shift = UInt32(min(16, any.trailingZeroBitCount))
        let lowest = least >> shift
        let span = Int((most >> shift) - lowest) + 1
        if span < DellaScratch.countSlots(length: length) {
            counts.update(repeating: 0, count: span + 1)
            // The slots replace the keys, in one branch-free pass the compiler vectorizes, so that the two passes
            // over the counts below only load them.
            for k in 0..<length {
                let key = keys[k]
                keys[k] = key == 0 ? 0 : ((key >> shift) &- lowest) &+ 1
            }
            for k in 0..<length { counts[Int(keys[k])] += 1 }
            var sum: UInt32 = 0
            for s in 0...span {
                let n = counts[s]
                counts[s] = sum
                sum += n
            }
            for k in 0..<length {
                let s = Int(keys[k])
                ranks[k] = counts[s]
                counts[s] += 1
            }
            return ranks
        }
        // Radix: the bytes some keys differ in need a pass (at most four, shifts in `shifts`).
        let varying = any ^ all
        var shifts = SIMD4<UInt32>(), passes = 0
        for d in 0..<4 where (varying >> (8 * d)) & 0xFF != 0 {
            shifts[passes] = UInt32(8 * d)
            passes += 1
        }
        counts.update(repeating: 0, count: 256 * passes)
        for k in 0..<length {
            let key = keys[k]
            for j in 0..<passes { counts[256 * j + Int((key >> shifts[j]) & 0xFF)] += 1 }
        }
        for j in 0..<passes {
            let c = counts + 256 * j
            var sum: UInt32 = 0
            for b in 0..<256 {
                let n = c[b]
                c[b] = sum
                sum += n
            }
            let shift = shifts[j]
            if j == 0 {
                for k in 0..<length {
                    let b = Int((keys[k] >> shift) & 0xFF)
                    target[Int(c[b])] = UInt32(k)
                    c[b] += 1
                }
            } else {
                for k in 0..<length {
                    let p = source[k]
                    let b = Int((keys[Int(p)] >> shift) & 0xFF)
                    target[Int(c[b])] = p
                    c[b] += 1
                }
            }
            swap(&source, &target)
        }
        // `source` holds the positions in rank order; their ranks go to the other row.
        for r in 0..<length { target[Int(source[r])] = UInt32(r) }
        return target
    }
}
