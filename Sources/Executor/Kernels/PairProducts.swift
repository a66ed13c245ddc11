/// Sums of products of operand pairs, `Σ (x_j[i] − o[i])·(x_k[i] − o[i])` in f64 (`o`: an optional origin
/// operand, else 0), each in `lanes` lanes: element `i` (a global index) adds to lane `i mod 8` of its pair's sum,
/// elements of a lane in index order, so that eight elements add at once in vector registers and the result
/// depends on neither chunks nor threads. `sums(lanes:)` then adds each sum's lanes in lane order.
struct PairProducts: Sendable {
    /// Operand index pairs; sum `q` is the one of `pairs[q]`.
    let pairs: [(Int, Int)]

    init(_ pairs: [(Int, Int)]) { self.pairs = pairs }

    /// Lanes per sum: `acc[8·q + l]` is lane `l` of sum `q`.
    static let lanes = 8

    /// Doubles the lane sums of `pairs` take (`lanes` per pair).
    var laneCount: Int { pairs.count * Self.lanes }

    /// Every pair `j ≤ k` of operands `0..<count`, in the order (0,0), (0,1), …, (0,count−1), (1,1), …
    static func gram(_ count: Int) -> PairProducts {
        PairProducts((0..<count).flatMap { j in (j..<count).map { (j, $0) } })
    }

    /// The index of pair `(j, k)`, `j ≤ k`, in `gram(count)`.
    static func gramIndex(_ j: Int, _ k: Int, count: Int) -> Int { j * count - j * (j - 1) / 2 + (k - j) }

    /// Adds the products over `range` (global indices into `x` and `origin`) to the lane sums `acc` (`laneCount`
    /// doubles): element `i` to lane `i mod 8` of each pair's sum. Aligned groups of eight go through vector
    /// registers a tile at a time, pair by pair; the elements before and after them one at a time.
    func fold(_ x: [UnsafePointer<Float>], origin: UnsafePointer<Float>?, _ range: Range<Int>,
              into acc: UnsafeMutablePointer<Double>) {
        @inline(__always) func scalar(_ i: Int) {
            let z = origin.map { Double($0[i]) } ?? 0
            for (q, (j, k)) in pairs.enumerated() {
                acc[q * 8 + (i & 7)] += (Double(x[j][i]) - z) * (Double(x[k][i]) - z)
            }
        }
        var i = range.lowerBound
        while i < range.upperBound, i & 7 != 0 {
            scalar(i)
            i += 1
        }
        let body = i + (range.upperBound - i) / 8 * 8
        var start = i
        while start < body {
            let end = min(body, start + Self.tile)
            for (q, (j, k)) in pairs.enumerated() {
                let lanes = UnsafeMutableRawPointer(acc + q * 8)
                var s = lanes.loadUnaligned(as: SIMD8<Double>.self)
                let a = x[j], b = x[k]
                var e = start
                if let o = origin {
                    while e < end {
                        let z = LaneConversions.wide(o, e)
                        s += (LaneConversions.wide(a, e) - z) * (LaneConversions.wide(b, e) - z)
                        e += 8
                    }
                } else {
                    while e < end {
                        s += LaneConversions.wide(a, e) * LaneConversions.wide(b, e)
                        e += 8
                    }
                }
                lanes.storeBytes(of: s, as: SIMD8<Double>.self)
            }
            start = end
        }
        i = body
        while i < range.upperBound {
            scalar(i)
            i += 1
        }
    }

    /// Elements folded pair after pair while their operands stay in the L1 cache.
    private static let tile = 1024

    /// The pair sums from lane sums (`acc`, `laneCount` values): each sum's lanes added from 0 in lane order.
    static func sums(lanes acc: UnsafePointer<Double>, pairs: Int) -> [Double] {
        (0..<pairs).map { q in
            var total = 0.0
            for l in 0..<Self.lanes { total += acc[q * Self.lanes + l] }
            return total
        }
    }

    /// `sums(lanes:pairs:)` of an array of lane sums (`StreamingSums.totals()`).
    static func sums(lanes: [Double]) -> [Double] {
        lanes.withUnsafeBufferPointer { sums(lanes: $0.baseAddress!, pairs: $0.count / Self.lanes) }
    }

    /// The symmetric matrix of `gram(count)` sums.
    static func matrix(_ sums: [Double], count: Int) -> [[Double]] {
        (0..<count).map { j in (0..<count).map { k in sums[gramIndex(min(j, k), max(j, k), count: count)] } }
    }
}
