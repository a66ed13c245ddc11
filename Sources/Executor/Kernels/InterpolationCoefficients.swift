import Foundation

/// The two coefficients `(ca, cb)` of nuslerp's spherical interpolation `ca·a + cb·b` at `t`, from the vectors'
/// squared norms `aa`, `bb` and dot product `ab` (slerp follows PyTorch's f32 order instead: `SlerpChunkKernel`).
enum InterpolationCoefficients {
    /// mergekit 0.1.5 `nuslerp`: norms at least 1e-7, linear interpolation where `1 − cos² ≤ 1e-16`.
    static func nuslerp(t: Double, aa: Double, bb: Double, ab: Double) -> (Double, Double) {
        let na = max(aa.squareRoot(), 1e-7)
        let nb = max(bb.squareRoot(), 1e-7)
        let cos = min(1, max(-1, ab / (na * nb)))
        if 1 - cos * cos <= 1e-16 { return (1 - t, t) }
        return spherical(t: t, theta: acos(cos))
    }

    private static func spherical(t: Double, theta: Double) -> (Double, Double) {
        let s = sin(theta)
        return (sin((1 - t) * theta) / s, sin(t * theta) / s)
    }
}
