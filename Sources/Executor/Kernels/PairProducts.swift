/// Sums of products of operand pairs, `Σ (x_j[i] − o[i])·(x_k[i] − o[i])` in f64 (`o`: an optional origin
/// operand, else 0). Each pair's sum folds one element at a time in index order, so a fold over a range gives the
/// same bits as one sequential f64 sum per pair; pairs are folded three at a time to overlap their additions.
struct PairProducts: Sendable {
    /// Operand index pairs; sum `q` is the one of `pairs[q]`.
    let pairs: [(Int, Int)]

    init(_ pairs: [(Int, Int)]) { self.pairs = pairs }

    /// Every pair `j ≤ k` of operands `0..<count`, in the order (0,0), (0,1), …, (0,count−1), (1,1), …
    static func gram(_ count: Int) -> PairProducts {
        PairProducts((0..<count).flatMap { j in (j..<count).map { (j, $0) } })
    }

    /// The index of pair `(j, k)`, `j ≤ k`, in `gram(count)`.
    static func gramIndex(_ j: Int, _ k: Int, count: Int) -> Int { j * count - j * (j - 1) / 2 + (k - j) }

    /// Adds the products over `range` (indices into `x` and `origin`) to `acc[q]`, element by element in order.
    func fold(_ x: [UnsafePointer<Float>], origin: UnsafePointer<Float>?, _ range: Range<Int>,
              into acc: UnsafeMutablePointer<Double>) {
        var q = 0
        while q < pairs.count {
            // A group of three sums; a shorter last group repeats its last pair, whose copies end equal.
            let q0 = q, q1 = min(q + 1, pairs.count - 1), q2 = min(q + 2, pairs.count - 1)
            let a0 = x[pairs[q0].0], b0 = x[pairs[q0].1]
            let a1 = x[pairs[q1].0], b1 = x[pairs[q1].1]
            let a2 = x[pairs[q2].0], b2 = x[pairs[q2].1]
            var s0 = acc[q0], s1 = acc[q1], s2 = acc[q2]
            if let o = origin {
                for i in range {
                    let z = Double(o[i])
                    s0 += (Double(a0[i]) - z) * (Double(b0[i]) - z)
                    s1 += (Double(a1[i]) - z) * (Double(b1[i]) - z)
                    s2 += (Double(a2[i]) - z) * (Double(b2[i]) - z)
                }
            } else {
                for i in range {
                    s0 += Double(a0[i]) * Double(b0[i])
                    s1 += Double(a1[i]) * Double(b1[i])
                    s2 += Double(a2[i]) * Double(b2[i])
                }
            }
            acc[q2] = s2
            acc[q1] = s1
            acc[q0] = s0
            q += 3
        }
    }

    /// The symmetric matrix of `gram(count)` sums.
    static func matrix(_ sums: [Double], count: Int) -> [[Double]] {
        (0..<count).map { j in (0..<count).map { k in sums[gramIndex(min(j, k), max(j, k), count: count)] } }
    }
}
