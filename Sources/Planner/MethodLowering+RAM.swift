import IR

/// Lowering of mergekit's RAM methods (`ram`, `ramplus_tl`): task vectors, the RAM merge, added to the base.
extension MethodLowering {
    func ram(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard let baseIndex = recipe.baseIndex else { throw .invalidConfig(location, "\(spec.name) needs base_model") }
        let base = inputs[baseIndex]
        let others = inputs.indices.filter { $0 != baseIndex }
        if others.isEmpty { return base }
        let deltas = others.map { b.graph.add(.sub, [inputs[$0], base], type: type, stage: stage) }
        let epsilon = try recipe.shared.number("epsilon") ?? 1e-5
        let op: Op
        if spec.name == "ramplus_tl" {
            op = .ramPlusMerge(r: try recipe.shared.number("r") ?? 0.1, alpha: try recipe.shared.number("alpha") ?? 0.2,
                               epsilon: epsilon)
        } else {
            op = .ramMerge(epsilon: epsilon)
        }
        let merged = b.graph.add(op, deltas, type: type, stage: stage, note: note("over task vectors"))
        return b.graph.add(.add, [base, merged], type: type, stage: stage)
    }
}
