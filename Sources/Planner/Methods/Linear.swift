import IR

/// `linear`: the weighted average of the models, Σ wᵢ·xᵢ / Σ wᵢ (mergekit's `LinearMerge`, "Model soups",
/// Wortsman et al. 2022). Lowers to one `weighted_sum` of the inputs with the (normalized) weights.
///
/// Scalar rounding (`linear_merge`): the weights are a float32 coefficient tensor (`ScalarRounding.f32`, never
/// the merge dtype) and the sum is an f32 accumulator of fused multiply-adds divided by the f32 sum of the
/// weights, rounded to the merge dtype once. On bf16/f16 merges it lowers to `linear_mix` with the f32 weights,
/// which follows that order exactly; f32 merges keep the f64 `weighted_sum` (within the f32 tolerance).
struct Linear: MergeMethod {
    /// Each model's weight, the base included (any finite number).
    static let weight = Parameter<Double>.required("weight", .input)
    /// Divide the weights by their sum (mergekit's default: true).
    static let normalize = Parameter<Bool>.bool("normalize", .shared, default: true)

    let spec = MethodSpec(
        name: "linear", summary: "weighted average: Σ wᵢ·xᵢ / Σ wᵢ",
        reference: "[Model soups](https://arxiv.org/abs/2203.05482); mergekit `LinearMerge`",
        parameters: [weight.spec, normalize.spec], base: .ignored)

    /// Throws `invalidConfig` at the first weight past float32's largest value (`finiteRounded`: mergekit's
    /// coefficient tensor), and at the first weight when `normalize` is set and the weights sum to zero.
    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        let all = Array(inputs.indices)
        let w = c.values(Self.weight, of: all)
        let f32 = try c.finiteRounded(Self.weight, of: all, .f32)
        let normalize = c[Self.normalize]
        let coefficients = normalize ? try c.normalized(w, key: Self.weight, of: all) : w
        let note = c.note("weight=\(c.list(w)) normalize=\(normalize)")
        if c.type.dtype != .f32 {
            return c.add(.linearMix(weights: f32, normalize: normalize), inputs, note: note)
        }
        return c.add(.weightedSum(coefficients), inputs, note: note)
    }
}
