/// Combinations `Σ c_k·v_k` of vectors known by their Gram matrix.
struct GramCombinations {
    let matrix: [[Double]]

    init(_ matrix: [[Double]]) { self.matrix = matrix }

    /// The dot products `v_j·Σ c_k·v_k` for every `j`.
    func dots(_ c: [Double]) -> [Double] {
        matrix.map { row in zip(row, c).reduce(0.0) { $0 + $1.0 * $1.1 } }
    }

    /// The norm of `Σ c_k·v_k` (rounding can make the square slightly negative near zero: 0 then; NaN stays NaN,
    /// as a NaN norm of the vectors themselves would be).
    func norm(_ c: [Double]) -> Double {
        let square = zip(dots(c), c).reduce(0.0) { $0 + $1.0 * $1.1 }
        return square.isNaN ? .nan : max(0, square).squareRoot()
    }
}
