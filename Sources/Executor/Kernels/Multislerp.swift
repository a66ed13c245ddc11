import Foundation

/// Multi-SLERP (mergekit 0.1.5 `multislerp`): barycentric interpolation on the hypersphere. The inputs are
/// projected to the unit sphere, mixed in the tangent space at their normalized weighted mean, mapped back with
/// the exponential map, and scaled by the weighted mean of their norms. Every vector involved is a combination
/// of the inputs, so the result's coefficients follow from the inputs' Gram matrix.
enum Multislerp {
    static let zeroMean = "the weighted sum of the input tensors is zero (antipodal inputs whose weights "
        + "balance out); use different weights"

    /// The result's coefficients over the inputs, from their Gram matrix `g`.
    static func coefficients(gram g: [[Double]], weights w: [Double], eps: Double) throws(ExecutionError) -> [Double] {
        let m = w.count
        let norms = (0..<m).map { g[$0][$0].squareRoot() }
        // Unit vectors u_k = x_k·inverse_k; the weighted mean M = Σ w_k·u_k = Σ scale_k·x_k.
        let inverse = norms.map { 1 / ($0 + eps) }
        let scale = (0..<m).map { inverse[$0] * w[$0] }
        let inputs = GramCombinations(g)
        let gs = inputs.dots(scale)
        let meanNorm = inputs.norm(scale)
        if meanNorm < eps {
            guard m == 2 else { throw .undefinedMerge(value: "", op: "multislerp", zeroMean) }
            return w
        }
        // dot_k = u_k·M/‖M‖; the tangent Σ_k w_k·(u_k − dot_k·M/‖M‖) = (1 − pull)·M.
        let dots = (0..<m).map { inverse[$0] * gs[$0] / meanNorm }
        let pull = (0..<m).reduce(0.0) { $0 + w[$1] * dots[$1] } / meanNorm
        let tangentNorm = abs(1 - pull) * meanNorm + eps
        let averageNorm = (0..<m).reduce(0.0) { $0 + norms[$1] * w[$1] }
        let meanFactor = cos(tangentNorm) / meanNorm * averageNorm
        // The tangent is zero in exact arithmetic (the weighted mean of the units is `M` itself); mergekit's is its
        // rounding, so `sin(t) / t` is 1 there even with `eps` 0, its limit, which stands in for 0 / 0.
        let tangentFactor = (tangentNorm == 0 ? 1 : sin(tangentNorm) / tangentNorm) * averageNorm
        return scale.map { (meanFactor + tangentFactor * (1 - pull)) * $0 }
    }
}
