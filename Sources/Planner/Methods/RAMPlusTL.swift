import IR

/// `ramplus_tl`: RAM+ (tensor-local): RAM with each model's unique changes scaled up by its share of overlap
/// (mergekit's `ramplus_tl_merge`). Lowers to task vectors, one `ramplus_merge`, plus the base.
///
/// Scalar rounding (`ramplus_tl_merge`): `epsilon` as in `ram` (rounded to the merge dtype by the kernel); `r` and
/// `alpha` scale counts in f32 tensors, never the merge dtype. λ being an f32 tensor, mergekit's merged task vector
/// and its sum with the base are f32 on bf16/f16 merges (it writes them as F32: see docs/mergekit-differences.md);
/// here the `ramplus_merge` and the base's `add` are f32 nodes there, and one `cast` rounds the sum to the
/// declared dtype.
struct RAMPlusTL: MergeMethod {
    /// The overlap ratio's weight in the rescaling of unique entries.
    static let r = Parameter<Double>.float("r", .shared, default: 0.1)
    /// The exponent-like strength of the overlap rescaling.
    static let alpha = Parameter<Double>.float("alpha", .shared, default: 0.2)
    /// The magnitude above which a task-vector entry counts as changed.
    static let epsilon = Parameter<Double>.float("epsilon", .shared, default: 1e-5, range: .nonNegative)

    let spec = MethodSpec(
        name: "ramplus_tl", summary: "RAM+ (tensor-local): unique entries scaled up by each model's overlap ratio",
        reference: "[RAM](https://arxiv.org/abs/2601.13572); mergekit `ramplus_tl_merge`",
        parameters: [r.spec, alpha.spec, epsilon.spec], base: .required)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let baseIndex = c.baseIndex else { throw .invalidConfig(c.location, "\(spec.name) needs base_model") }
        let others = c.others
        if others.isEmpty { return inputs[baseIndex] }
        let op = Op.ramPlusMerge(r: c[Self.r], alpha: c[Self.alpha], epsilon: c[Self.epsilon])
        let dtype = c.type.dtype
        guard dtype == .bf16 || dtype == .f16 else {
            return c.restore(c.add(op, c.offsets(inputs, others), note: c.note("over task vectors")), inputs)
        }
        let merged = c.add(op, c.offsets(inputs, others), dtype: .f32, note: c.note("over task vectors, in f32 as λ is"))
        return c.add(.cast(dtype), [c.add(.add, [inputs[baseIndex], merged], dtype: .f32)])
    }
}
