/// Sums of products of operand pairs, `Σ (x_j[i] − o[i])·(x_k[i] − o[i])` in f64 (`o`: an optional origin
/// operand, else 0). Each pair's sum folds one element at a time in index order, so a fold over a range gives the
/// same bits as one sequential f64 sum per pair; pairs are folded six at a time to overlap their additions.
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
    /// Six sums at a time, so that six chains of additions overlap (each sum's order is its own).
    func fold(_ x: [UnsafePointer<Float>], origin: UnsafePointer<Float>?, _ range: Range<Int>,
              into acc: UnsafeMutablePointer<Double>) {
        var q = 0
        while q < pairs.count {
            // A group of six sums; a shorter last group repeats its last pair, whose copies end equal.
            let last = pairs.count - 1
            let qs = (q, min(q + 1, last), min(q + 2, last), min(q + 3, last), min(q + 4, last), min(q + 5, last))
            let a0 = x[pairs[qs.0].0], b0 = x[pairs[qs.0].1]
            let a1 = x[pairs[qs.1].0], b1 = x[pairs[qs.1].1]
            let a2 = x[pairs[qs.2].0], b2 = x[pairs[qs.2].1]
            let a3 = x[pairs[qs.3].0], b3 = x[pairs[qs.3].1]
            let a4 = x[pairs[qs.4].0], b4 = x[pairs[qs.4].1]
            let a5 = x[pairs[qs.5].0], b5 = x[pairs[qs.5].1]
            var s0 = acc[qs.0], s1 = acc[qs.1], s2 = acc[qs.2], s3 = acc[qs.3], s4 = acc[qs.4], s5 = acc[qs.5]
            if let o = origin {
                for i in range {
                    let z = Double(o[i])
                    s0 += (Double(a0[i]) - z) * (Double(b0[i]) - z)
                    s1 += (Double(a1[i]) - z) * (Double(b1[i]) - z)
                    s2 += (Double(a2[i]) - z) * (Double(b2[i]) - z)
                    s3 += (Double(a3[i]) - z) * (Double(b3[i]) - z)
                    s4 += (Double(a4[i]) - z) * (Double(b4[i]) - z)
                    s5 += (Double(a5[i]) - z) * (Double(b5[i]) - z)
                }
            } else {
                for i in range {
                    s0 += Double(a0[i]) * Double(b0[i])
                    s1 += Double(a1[i]) * Double(b1[i])
                    s2 += Double(a2[i]) * Double(b2[i])
                    s3 += Double(a3[i]) * Double(b3[i])
                    s4 += Double(a4[i]) * Double(b4[i])
                    s5 += Double(a5[i]) * Double(b5[i])
                }
            }
            // Repeated pairs end equal; the first copy is written last.
            acc[qs.5] = s5
            acc[qs.4] = s4
            acc[qs.3] = s3
            acc[qs.2] = s2
            acc[qs.1] = s1
            acc[qs.0] = s0
            q += 6
        }
    }

    /// The symmetric matrix of `gram(count)` sums.
    static func matrix(_ sums: [Double], count: Int) -> [[Double]] {
        (0..<count).map { j in (0..<count).map { k in sums[gramIndex(min(j, k), max(j, k), count: count)] } }
    }
}
