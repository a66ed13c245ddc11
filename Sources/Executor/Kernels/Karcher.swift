import Foundation

/// The Karcher (Riemannian) mean on the unit hypersphere as mergekit 0.1.5 `karcher` computes it: equal weights
/// over the inputs whose norm exceeds `tol`, at most `maxIter` gradient steps from the normalized weighted mean,
/// then scaled by the weighted mean of all the inputs' norms. Whole tensors are the vectors; every iterate is a
/// combination of the unit inputs, so the iteration runs on coefficient vectors with the unit inputs' Gram matrix.
enum Karcher {
    /// The result's terms `(input, coefficient)` from the inputs' Gram matrix `g` (none: the result is zero).
    static func terms(gram g: [[Double]], maxIter: Int, tol: Double) -> [(operand: Int, coefficient: Double)] {
        let count = g.count
        let alphas = [Double](repeating: 1 / Double(count), count: count)
        let norms = (0..<count).map { g[$0][$0].squareRoot() }
        let valid = norms.indices.filter { norms[$0] > tol }
        guard !valid.isEmpty else { return [] }
        let alphaSum = valid.reduce(0.0) { $0 + alphas[$1] }
        let weights = valid.map { alphas[$0] / alphaSum }
        // The unit inputs' Gram matrix.
        let h = valid.map { j in valid.map { k in g[j][k] / norms[j] / norms[k] } }
        let units = GramCombinations(h)

        var mean = weights
        let initial = units.norm(mean)
        if initial < tol {
            mean = valid.indices.map { $0 == 0 ? 1 : 0 }
        } else {
            mean = mean.map { $0 / initial }
        }
        for _ in 0..<maxIter {
            let dots = units.dots(mean).map { min(1, max(-1, $0)) }
            // tangent = Σ c_k·(u_k − dot_k·mean) over the inputs at least `tol` away from the mean.
            var tangent = [Double](repeating: 0, count: valid.count)
            var meanCoefficient = 0.0
            for k in valid.indices {
                let theta = acos(dots[k])
                if theta < tol { continue }
                tangent[k] = weights[k] * theta / sin(theta)
                meanCoefficient -= tangent[k] * dots[k]
            }
            tangent = valid.indices.map { tangent[$0] + meanCoefficient * mean[$0] }
            let tangentNorm = units.norm(tangent)
            if tangentNorm < tol { break }
            let a = cos(tangentNorm), b = sin(tangentNorm) / tangentNorm
            mean = valid.indices.map { a * mean[$0] + b * tangent[$0] }
            let unitNorm = units.norm(mean)
            if unitNorm > tol { mean = mean.map { $0 / unitNorm } }
        }
        let scale = zip(alphas, norms).reduce(0.0) { $0 + $1.0 * $1.1 }
        return valid.indices.map { (valid[$0], scale * mean[$0] / norms[valid[$0]]) }
    }
}
