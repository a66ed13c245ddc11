import IR

// The methods that choose elements: nearswap, sce and arcee_fusion. They share this file (one type each) so
// that each of their names is spelled in one planner file, the registry list included.

extension MethodRegistry {
    /// The element-choosing methods, in registry order.
    static let selective: [any MergeMethod] = [NearSwap(), SCE(), ArceeFusion()]
}

/// `nearswap`: per element, moves the base toward the other model by `clamp(t / |a − b|, 0, 1)`, so only
/// where they are already close (mergekit's `nearswap_merge`). Lowers to one `nearswap(t)` node, base first.
///
/// Scalar rounding (`nearswap_merge`): `t / absdiff` with a Python scalar (applied as f32), not rounded to the
/// merge dtype. (mergekit's arithmetic runs in the merge dtype, rounding every op; the kernel computes in f64.)
struct NearSwap: MergeMethod {
    /// The distance scale: elements closer than `t` are swapped entirely.
    static let t = Parameter<Double>.required("t", .shared)

    let spec = MethodSpec(
        name: "nearswap",
        summary: "per element, moves the base toward the other model by `clamp(t / abs(a − b), 0, 1)`: only where they are already close",
        reference: "[QuartetAnemoi](https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001); mergekit `nearswap_merge`",
        parameters: [t.spec], base: .required, minInputs: 2, maxInputs: 2)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let baseIndex = c.baseIndex else { throw .invalidConfig(c.location, "nearswap needs base_model") }
        return c.add(.nearSwap(t: c[Self.t]), [inputs[baseIndex], inputs[1 - baseIndex]], note: c.note("base first"))
    }
}

/// `sce`: task vectors, an optional variance top-k mask, TIES sign election over the plain sum, and the
/// energy-weighted disjoint mean added to the base (mergekit's `sce_merge`). `int8_mask` only changes mergekit's
/// mask storage, never the values.
///
/// Scalar rounding (`sce_merge`): none; `select_topk` only counts elements in Python.
struct SCE: MergeMethod {
    /// The fraction of elements kept, those whose task vectors vary most across models; 1 keeps all.
    static let selectTopK = Parameter<Double>.float("select_topk", .shared, default: 1, range: .nonNegative)
    /// mergekit's mask storage type; no effect on the values.
    static let int8Mask = Parameter<Bool>.bool("int8_mask", .shared, default: false)

    let spec = MethodSpec(
        name: "sce",
        summary: "keeps the `select_topk` fraction of elements whose task vectors vary most across models, elects signs (TIES), averages the agreeing task vectors weighted by their mean square",
        reference: "[FuseChat (SCE)](https://arxiv.org/abs/2408.07990); mergekit `sce_merge`",
        parameters: [int8Mask.spec, selectTopK.spec], base: .required)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let baseIndex = c.baseIndex else { throw .invalidConfig(c.location, "sce needs base_model") }
        let others = c.others
        if others.isEmpty { return inputs[baseIndex] }
        let topK = c[Self.selectTopK]
        var deltas = c.offsets(inputs, others)
        if topK < 1 {
            // The variance in f32 whatever the merge dtype (see docs/mergekit-differences.md), as its own value
            // so that the selection's passes read it instead of recomputing it (and the plan can keep it whole).
            let variance = c.add(.variance, deltas, dtype: .f32)
            let mask = c.add(.varianceTopK(fraction: topK), [variance], note: "select_topk=\(formatAttribute(topK))")
            deltas = deltas.map { c.add(.mul, [$0, mask]) }
        }
        let sign = c.add(.signElect(weights: others.map { _ in 1 }), deltas)
        let merged = c.add(.sceMerge, [sign] + deltas,
                           note: c.note("select_topk=\(formatAttribute(topK)) int8_mask=\(c[Self.int8Mask])"))
        return c.restore(merged, inputs)
    }
}

/// `arcee_fusion`: takes the other model's elements whose change times the rows' softmax KL divergence exceeds
/// median + 1.5·IQR, the base elsewhere (mergekit's `ArceeFusionMerge`). Lowers to one `arcee_fusion` node,
/// base first.
///
/// Scalar rounding (`arcee_fusion_merge_method`): no config scalar.
struct ArceeFusion: MergeMethod {
    let spec = MethodSpec(
        name: "arcee_fusion",
        summary: "takes the other model's elements whose change times the rows' softmax KL divergence exceeds median + 1.5·IQR, the base elsewhere",
        reference: "mergekit `ArceeFusionMerge`",
        parameters: [], base: .required, minInputs: 2, maxInputs: 2)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let baseIndex = c.baseIndex else { throw .invalidConfig(c.location, "arcee_fusion needs base_model") }
        return c.add(.arceeFusion, [inputs[baseIndex], inputs[1 - baseIndex]], note: c.note("base first"))
    }
}
