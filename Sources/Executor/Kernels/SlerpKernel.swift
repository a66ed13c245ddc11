import Foundation
import IR

/// Spherical interpolation over a whole tensor, as mergekit 0.1.5 computes it: both tensors normalized by
/// their L2 norms (kept at 1 when ≤ 1e-8), linear interpolation when |cos| > 0.9995.
public enum SlerpKernel {
    public static let dotThreshold = 0.9995
    public static let eps = 1e-8

    /// The two interpolation coefficients for `t`, from the tensors' norms and dot product.
    public static func coefficients(t: Double, a: TensorBuffer, b: TensorBuffer, parallel: Parallel) -> (Double, Double) {
        let p = SharedPointers(inputs: [UnsafePointer(a.pointer), UnsafePointer(b.pointer)], output: a.pointer)
        let n = a.count
        let aa = parallel.sum(count: n) { r in r.reduce(0.0) { $0 + Double(p.inputs[0][$1]) * Double(p.inputs[0][$1]) } }
        let bb = parallel.sum(count: n) { r in r.reduce(0.0) { $0 + Double(p.inputs[1][$1]) * Double(p.inputs[1][$1]) } }
        let ab = parallel.sum(count: n) { r in r.reduce(0.0) { $0 + Double(p.inputs[0][$1]) * Double(p.inputs[1][$1]) } }
        withExtendedLifetime((a, b)) {}
        var na = aa.squareRoot()
        var nb = bb.squareRoot()
        if !(na > eps) { na = 1 }
        if !(nb > eps) { nb = 1 }
        let dot = min(1, max(-1, ab / (na * nb)))
        if abs(dot) > dotThreshold { return (1 - t, t) }
        let theta = acos(dot)
        let s = sin(theta)
        return (sin((1 - t) * theta) / s, sin(t * theta) / s)
    }

    public static func slerp(t: Double, _ a: TensorBuffer, _ b: TensorBuffer, dtype: DType,
                             parallel: Parallel) -> TensorBuffer {
        let (ca, cb) = coefficients(t: t, a: a, b: b, parallel: parallel)
        return ElementwiseKernels.map([a, b], dtype: dtype, parallel: parallel) { p, i in
            Float(ca * Double(p.inputs[0][i]) + cb * Double(p.inputs[1][i]))
        }
    }
}
