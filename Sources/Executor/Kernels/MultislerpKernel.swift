import Foundation
import IR

/// Multi-SLERP (mergekit 0.1.5 `multislerp`): barycentric interpolation on the hypersphere. The inputs are
/// projected to the unit sphere, mixed in the tangent space at their normalized weighted mean, mapped back
/// with the exponential map, and scaled by the weighted mean of their norms.
public enum MultislerpKernel {
    /// Why the interpolation is undefined: the weighted mean of the unit vectors vanishes (more than two inputs).
    public struct ZeroMean: Error {}

    public static func merge(_ xs: [TensorBuffer], weights w: [Double], eps: Double, dtype: DType,
                             parallel: Parallel) throws(ZeroMean) -> TensorBuffer {
        let n = xs[0].count
        let m = xs.count
        let p = SharedPointers(inputs: xs.map { UnsafePointer($0.pointer) }, output: xs[0].pointer)
        defer { withExtendedLifetime(xs) {} }
        let norms = parallel.squaredNorms(p, count: n).map { $0.squareRoot() }
        // Unit vectors scaled by their weights: u_k · w_k = x_k · scale[k].
        let inverse = norms.map { 1 / ($0 + eps) }
        let scale = zip(inverse, w).map { $0 * $1 }
        // [Σ mean², Σ u_k · mean for each k]
        let moments = parallel.sums(count: n, width: m + 1) { range, acc in
            for i in range {
                var mean = 0.0
                for k in 0..<m { mean += scale[k] * Double(p.inputs[k][i]) }
                acc[0] += mean * mean
                for k in 0..<m { acc[k + 1] += inverse[k] * Double(p.inputs[k][i]) * mean }
            }
        }
        let meanNorm = moments[0].squareRoot()
        if meanNorm < eps {
            guard m == 2 else { throw ZeroMean() }
            return ElementwiseKernels.weightedSum(xs, coefficients: w, dtype: dtype, parallel: parallel)
        }
        let dots = moments.dropFirst().map { $0 / meanNorm }
        // tangent = Σ_k w_k·(u_k − dot_k·mean/‖mean‖) = Σ_k scale_k·x_k − (Σ_k w_k·dot_k)·mean/‖mean‖
        let pull = zip(w, dots).reduce(0.0) { $0 + $1.0 * $1.1 } / meanNorm
        let tangentNorm = parallel.sum(count: n) { range in
            var s = 0.0
            for i in range {
                var mean = 0.0
                for k in 0..<m { mean += scale[k] * Double(p.inputs[k][i]) }
                let tangent = mean - pull * mean
                s += tangent * tangent
            }
            return s
        }.squareRoot() + eps
        let averageNorm = zip(norms, w).reduce(0.0) { $0 + $1.0 * $1.1 }
        let meanFactor = cos(tangentNorm) / meanNorm * averageNorm
        let tangentFactor = sin(tangentNorm) / tangentNorm * averageNorm
        return ElementwiseKernels.map(xs, dtype: dtype, parallel: parallel) { p, i in
            var mean = 0.0
            for k in 0..<m { mean += scale[k] * Double(p.inputs[k][i]) }
            return Float(meanFactor * mean + tangentFactor * (mean - pull * mean))
        }
    }
}
