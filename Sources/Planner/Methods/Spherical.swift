import IR

// The spherical methods: nuslerp, multislerp and karcher. They share this file (one type each) so that each of
// their names is spelled in one planner file, the registry list included.

extension MethodRegistry {
    /// The spherical methods, in registry order.
    static let spherical: [any MergeMethod] = [Nuslerp(), Multislerp(), Karcher()]
}

/// `nuslerp`: slerp with t = w₂ / (w₁ + w₂) of the two models (of their task vectors with a base), over the
/// whole tensor, each row, or each column (mergekit's `NuSlerpMerge`). Lowers to one `nuslerp` node.
///
/// Scalar rounding (`nuslerp_merge_method`): none. `t` is computed from the weights in Python (f64) and only
/// multiplies tensors as a Python scalar. (mergekit's tensor arithmetic itself runs in the merge dtype; on bf16/f16
/// the kernel rounds every op as it does, `NuslerpHalfPrecisionChunkKernel`; on f32 it sums in f64.)
struct Nuslerp: MergeMethod {
    /// Each non-base model's weight (any finite number; t = w₂ / (w₁ + w₂), 0.5 when they sum to about 0).
    static let weight = Parameter<Double>.required("weight", .nonBase)
    /// Interpolate each row (dimension 0) rather than each column, when not flattened.
    static let rowWise = Parameter<Bool>.bool("nuslerp_row_wise", .shared, default: false)
    /// Interpolate the whole tensor as one vector.
    static let flatten = Parameter<Bool>.bool("nuslerp_flatten", .shared, default: true)

    let spec = MethodSpec(
        name: "nuslerp",
        summary: "slerp with t = w₂ / (w₁ + w₂) of the two models (of their task vectors with a base), over the whole tensor, each row, or each column",
        reference: "mergekit `NuSlerpMerge`",
        parameters: [weight.spec, rowWise.spec, flatten.spec], base: .optional, minNonBase: 2, maxNonBase: 2)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        let others = c.others
        let w = c.values(Self.weight, of: others)
        let total = w.reduce(0, +)
        let t = abs(total) < 1e-6 ? 0.5 : w[1] / total
        let flatten = c[Self.flatten]
        let rowWise = c[Self.rowWise]
        let axis: SlerpAxis = flatten ? .flattened : rowWise ? .firstDim : .lastDim
        let merged = c.add(.nuslerp(t: t, axis: axis), c.offsets(inputs, others),
                           note: c.note("weight=\(c.list(w)) nuslerp_flatten=\(flatten) nuslerp_row_wise=\(rowWise)"
                                        + (c.baseIndex == nil ? "" : " (task vectors)")))
        return c.restore(merged, inputs)
    }
}

/// `multislerp`: barycentric interpolation of any number of models (or task vectors) on the hypersphere,
/// scaled by their weighted mean norm (mergekit's `multislerp`). Lowers to one `multislerp` node.
///
/// Scalar rounding (`multislerp`): the weights become a tensor of the merge dtype
/// (`ScalarRounding.mergeDType`) and `weights / weights.sum()` is computed in it: on bf16/f16 merges the
/// weights are rounded, their f32 sum is rounded, and each quotient is rounded. `eps` is a Python scalar.
/// (The rest of mergekit's arithmetic runs in the merge dtype too: on bf16/f16 the kernel rounds every op as it
/// does, `MultislerpHalfPrecisionChunkKernel`; on f32 it computes in f64 from the inputs' Gram matrix.)
struct Multislerp: MergeMethod {
    /// Each non-base model's weight (any finite number).
    static let weight = Parameter<Double>.required("weight", .nonBase)
    /// Divide the weights by their sum.
    static let normalizeWeights = Parameter<Bool>.bool("normalize_weights", .shared, default: true)
    /// The norm below which a vector is treated as zero.
    static let eps = Parameter<Double>.float("eps", .shared, default: 1e-8, range: .nonNegative)

    let spec = MethodSpec(
        name: "multislerp",
        summary: "barycentric interpolation of any number of models (or task vectors) on the hypersphere, scaled by their weighted mean norm",
        reference: "[Multi-SLERP](https://goddard.blog/posts/multislerp-wow-what-a-cool-idea); mergekit `multislerp`",
        parameters: [weight.spec, normalizeWeights.spec, eps.spec], base: .optional, minNonBase: 1)

    /// Throws `invalidConfig` at the first weight past the merge dtype's largest value (`finiteRounded`), and at the
    /// first weight when `normalize_weights` is set and the weights sum to zero.
    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        let others = c.others
        if others.count == 1 { return inputs[others[0]] }
        let w = c.values(Self.weight, of: others)
        let normalize = c[Self.normalizeWeights]
        let rounded = try c.finiteRounded(Self.weight, of: others, .mergeDType)
        let coefficients = normalize ? try Self.normalized(rounded, of: others, c) : rounded
        let merged = c.add(.multislerp(weights: coefficients, eps: c[Self.eps]), c.offsets(inputs, others),
                           note: c.note("weight=\(c.list(w)) normalize_weights=\(normalize)"
                                        + (c.baseIndex == nil ? "" : " (task vectors)")))
        return c.restore(merged, inputs)
    }
}

extension Multislerp {
    /// `weights / weights.sum()` on a tensor of the merge dtype, from the weights `rounded` to it (`finiteRounded`):
    /// on bf16/f16 merges their f32 sum rounded, each quotient rounded; on f32 and f64 merges the exact quotients.
    /// Throws `invalidConfig` at the first weight when the sum is zero or past the dtype's range.
    static func normalized(_ rounded: [Double], of others: [Int], _ c: LoweringContext) throws(PlanError) -> [Double] {
        guard c.type.dtype != .f32, c.type.dtype != .f64 else {
            return try c.normalized(rounded, key: weight, of: others)
        }
        let sum = c.rounded(Double(rounded.reduce(Float(0)) { $0 + Float($1) }), .mergeDType)
        guard sum != 0 else {
            throw .invalidConfig(c.location(of: weight, input: others[0]) ?? c.location,
                                 "weights of tensor '\(c.output)' sum to zero in \(c.type.dtype.torchName), so they cannot be normalized")
        }
        // A sum past the dtype's range is infinite there: every normalized weight would be 0 (mergekit's output all
        // zeros or NaN).
        guard sum.isFinite else {
            throw .invalidConfig(c.location(of: weight, input: others[0]) ?? c.location,
                                 "weights of tensor '\(c.output)' sum past the largest value of \(c.type.dtype.torchName), "
                                 + "so they cannot be normalized")
        }
        return rounded.map { c.rounded(Double(Float($0) / Float(sum)), .mergeDType) }
    }
}

/// `karcher`: the equally weighted Riemannian (Karcher) mean of the models' directions, scaled by their mean
/// norm (mergekit's `KarcherMerge`). Lowers to one `karcher` node over all inputs.
///
/// Scalar rounding (`karcher_merge_tensors`): none. The weights are Python floats 1/n, `max_iter` and `tol` only
/// steer the iteration (compared with `.item()` values).
struct Karcher: MergeMethod {
    /// The most fixed-point iterations (a whole number; mergekit runs none for a negative one, as for 0).
    static let maxIter = Parameter<Double>.float(
        "max_iter", .shared, default: 10,
        range: ParameterRange(lower: -1_000_000_000, upper: 1_000_000_000, integral: true))
    /// The step norm below which the iteration stops.
    static let tol = Parameter<Double>.float("tol", .shared, default: 1e-5, range: .nonNegative)

    let spec = MethodSpec(
        name: "karcher",
        summary: "equally weighted Riemannian (Karcher) mean of the models' directions, scaled by their mean norm",
        reference: "[Karcher mean](https://en.wikipedia.org/wiki/Fr%C3%A9chet_mean); mergekit `KarcherMerge`",
        parameters: [maxIter.spec, tol.spec], base: .ignored)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        if inputs.count == 1 { return inputs[0] }
        return c.add(.karcher(maxIter: max(0, Int(c[Self.maxIter])), tol: c[Self.tol]), inputs,
                     note: c.note("equal weights over \(inputs.count) inputs"))
    }
}
