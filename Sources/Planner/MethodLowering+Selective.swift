import IR

/// Lowering of the methods that choose elements: nearswap, sce and arcee_fusion.
extension MethodLowering {
    func nearSwap(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard let baseIndex = recipe.baseIndex else { throw .invalidConfig(location, "nearswap needs base_model") }
        guard let t = try recipe.shared.number("t") else { throw .invalidConfig(location, "nearswap needs parameter t") }
        return b.graph.add(.nearSwap(t: t), [inputs[baseIndex], inputs[1 - baseIndex]], type: type, stage: stage,
                           note: note("base first"))
    }

    /// mergekit's `sce_merge`: task vectors, optional variance top-k mask, TIES sign election over the plain
    /// sum, and the energy-weighted disjoint mean added to the base. `int8_mask` only changes mergekit's
    /// mask storage, never the values.
    func sce(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard let baseIndex = recipe.baseIndex else { throw .invalidConfig(location, "sce needs base_model") }
        let base = inputs[baseIndex]
        let others = inputs.indices.filter { $0 != baseIndex }
        if others.isEmpty { return base }
        let topK = try recipe.shared.number("select_topk") ?? 1
        let int8 = try recipe.shared.bool("int8_mask") ?? false
        var deltas = others.map { b.graph.add(.sub, [inputs[$0], base], type: type, stage: stage) }
        if topK < 1 {
            let mask = b.graph.add(.varianceTopK(fraction: topK), deltas, type: type, stage: stage,
                                   note: "select_topk=\(formatAttribute(topK))")
            deltas = deltas.map { b.graph.add(.mul, [$0, mask], type: type, stage: stage) }
        }
        let sign = b.graph.add(.signElect(weights: others.map { _ in 1 }), deltas, type: type, stage: stage)
        let merged = b.graph.add(.sceMerge, [sign] + deltas, type: type, stage: stage,
                                 note: note("select_topk=\(formatAttribute(topK)) int8_mask=\(int8)"))
        return b.graph.add(.add, [base, merged], type: type, stage: stage)
    }

    func arceeFusion(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard let baseIndex = recipe.baseIndex else { throw .invalidConfig(location, "arcee_fusion needs base_model") }
        return b.graph.add(.arceeFusion, [inputs[baseIndex], inputs[1 - baseIndex]], type: type, stage: stage,
                           note: note("base first"))
    }
}
