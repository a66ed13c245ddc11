import IR

/// `slerp`: spherical linear interpolation from the base (t = 0) to the other model (t = 1), linear when the
/// two are nearly collinear (mergekit's `SlerpMerge`, Shoemake 1985). Lowers to one `slerp(t)` node, base first.
///
/// Scalar rounding (`slerp_merge_method`): `t` is a float32 coefficient tensor and mergekit computes in f32 (not
/// the merge dtype), so nothing is rounded to bf16/f16. The kernel takes `t` and its coefficients in f64.
struct Slerp: MergeMethod {
    /// The interpolation factor, in [0, 1].
    static let t = Parameter<Double>.required("t", .shared, range: .unitInterval)

    let spec = MethodSpec(
        name: "slerp",
        summary: "spherical interpolation from the base (t = 0) to the other model (t = 1), linear when nearly collinear",
        reference: "[Shoemake 1985](https://doi.org/10.1145/325165.325242); mergekit `SlerpMerge`",
        parameters: [t.spec], base: .required, minInputs: 2, maxInputs: 2)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let baseIndex = c.baseIndex else { throw .invalidConfig(c.location, "slerp needs base_model") }
        return c.add(.slerp(t: c[Self.t]), [inputs[baseIndex], inputs[1 - baseIndex]], note: c.recipe.position)
    }
}
