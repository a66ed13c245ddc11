import Foundation
import IR

/// The Karcher (Riemannian) mean on the unit hypersphere as mergekit 0.1.5 `karcher` computes it: equal
/// weights over the inputs whose norm exceeds `tol`, at most `maxIter` gradient steps from the normalized
/// weighted mean, then scaled by the weighted mean of all the inputs' norms. Whole tensors are the vectors.
public enum KarcherKernel {
    public static func merge(_ xs: [TensorBuffer], maxIter: Int, tol: Double, dtype: DType,
                             parallel: Parallel) -> TensorBuffer {
        let n = xs[0].count
        let count = xs.count
        let alphas = [Double](repeating: 1 / Double(count), count: count)
        let p = SharedPointers(inputs: xs.map { UnsafePointer($0.pointer) }, output: xs[0].pointer)
        defer { withExtendedLifetime(xs) {} }
        let norms = parallel.squaredNorms(p, count: n).map { $0.squareRoot() }
        let valid = norms.indices.filter { norms[$0] > tol }
        guard !valid.isEmpty else {
            return ElementwiseKernels.map(xs, dtype: dtype, parallel: parallel) { _, _ in 0 }
        }
        let alphaSum = valid.reduce(0.0) { $0 + alphas[$1] }
        let weights = valid.map { alphas[$0] / alphaSum }
        let inverse = valid.map { 1 / norms[$0] }
        let units = valid.map { p.inputs[$0] }
        let vectors = UnitVectors(units: units, inverse: inverse)

        // The mean direction, kept in f64 between iterations.
        let mean = PartialSums(count: n)
        let initial = vectors.combination(weights, into: mean, count: n, parallel: parallel).squareRoot()
        if initial < tol {
            parallel.forEachBlock(count: n) { r in for i in r { mean.set(i, vectors.unit(0, i)) } }
        } else {
            parallel.forEachBlock(count: n) { r in for i in r { mean.set(i, mean.value(i) / initial) } }
        }

        let tangent = PartialSums(count: n)
        for _ in 0..<maxIter {
            let dots = parallel.sums(count: n, width: vectors.units.count) { range, acc in
                for k in 0..<vectors.units.count {
                    var s = 0.0
                    for i in range { s += mean.value(i) * vectors.unit(k, i) }
                    acc[k] += s
                }
            }.map { min(1, max(-1, $0)) }
            // tangent = Σ c_k·(u_k − dot_k·mean) over the inputs at least `tol` away from the mean.
            var coefficients = [Double](repeating: 0, count: units.count)
            var meanCoefficient = 0.0
            for k in units.indices {
                let theta = acos(dots[k])
                if theta < tol { continue }
                coefficients[k] = weights[k] * theta / sin(theta)
                meanCoefficient -= coefficients[k] * dots[k]
            }
            let c = coefficients, cm = meanCoefficient
            let tangentNorm = parallel.sum(count: n) { range in
                var s = 0.0
                for i in range {
                    var t = cm * mean.value(i)
                    for k in 0..<c.count { t += c[k] * vectors.unit(k, i) }
                    tangent.set(i, t)
                    s += t * t
                }
                return s
            }.squareRoot()
            if tangentNorm < tol { break }
            let a = cos(tangentNorm), b = sin(tangentNorm) / tangentNorm
            let unitNorm = parallel.sum(count: n) { range in
                var s = 0.0
                for i in range {
                    let v = a * mean.value(i) + b * tangent.value(i)
                    mean.set(i, v)
                    s += v * v
                }
                return s
            }.squareRoot()
            if unitNorm > tol {
                parallel.forEachBlock(count: n) { r in for i in r { mean.set(i, mean.value(i) / unitNorm) } }
            }
        }
        let scale = zip(alphas, norms).reduce(0.0) { $0 + $1.0 * $1.1 }
        return ElementwiseKernels.map(xs, dtype: dtype, parallel: parallel) { _, i in Float(scale * mean.value(i)) }
    }
}

/// The valid inputs of a Karcher mean read as unit vectors without copying them.
struct UnitVectors: @unchecked Sendable {
    var units: [UnsafePointer<Float>]
    var inverse: [Double]

    @inline(__always)
    func unit(_ k: Int, _ i: Int) -> Double { Double(units[k][i]) * inverse[k] }

    /// Writes `Σ w_k·u_k` into `out` and returns its squared norm.
    func combination(_ w: [Double], into out: PartialSums, count n: Int, parallel: Parallel) -> Double {
        parallel.sum(count: n) { range in
            var s = 0.0
            for i in range {
                var v = 0.0
                for k in 0..<w.count { v += w[k] * unit(k, i) }
                out.set(i, v)
                s += v * v
            }
            return s
        }
    }
}
