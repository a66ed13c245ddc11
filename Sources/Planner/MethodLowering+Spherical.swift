import IR

/// Lowering of the spherical methods: nuslerp, multislerp and karcher.
extension MethodLowering {
    /// The base's index and the other inputs' indices, in input order.
    func split(_ inputs: [ValueID]) -> (base: Int?, others: [Int]) {
        (recipe.baseIndex, inputs.indices.filter { $0 != recipe.baseIndex })
    }

    /// Task vectors `input − base` for `others`, or the inputs themselves without a base.
    func offsets(_ inputs: [ValueID], _ others: [Int], base: Int?, type: TensorType, _ b: GraphBuilder) -> [ValueID] {
        guard let base else { return others.map { inputs[$0] } }
        return others.map { b.graph.add(.sub, [inputs[$0], inputs[base]], type: type, stage: stage) }
    }

    /// Adds the base back to a merged task vector (no-op without a base).
    func restore(_ merged: ValueID, _ inputs: [ValueID], base: Int?, type: TensorType, _ b: GraphBuilder) -> ValueID {
        guard let base else { return merged }
        return b.graph.add(.add, [inputs[base], merged], type: type, stage: stage)
    }

    func nuslerp(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        let (base, others) = split(inputs)
        let w = try weights(of: others)
        let total = w.reduce(0, +)
        let t = abs(total) < 1e-6 ? 0.5 : w[1] / total
        let flatten = try recipe.shared.bool("nuslerp_flatten") ?? true
        let rowWise = try recipe.shared.bool("nuslerp_row_wise") ?? false
        let axis: SlerpAxis = flatten ? .flattened : rowWise ? .firstDim : .lastDim
        let ends = offsets(inputs, others, base: base, type: type, b)
        let merged = b.graph.add(.nuslerp(t: t, axis: axis), ends, type: type, stage: stage,
                                 note: note("weight=\(list(w)) nuslerp_flatten=\(flatten) nuslerp_row_wise=\(rowWise)"
                                            + (base == nil ? "" : " (task vectors)")))
        return restore(merged, inputs, base: base, type: type, b)
    }

    func multislerp(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        let (base, others) = split(inputs)
        if others.count == 1 { return inputs[others[0]] }
        let w = try weights(of: others)
        let normalize = try recipe.shared.bool("normalize_weights") ?? true
        let eps = try recipe.shared.number("eps") ?? 1e-8
        var coefficients = w
        if normalize {
            let sum = w.reduce(0, +)
            guard sum != 0 else {
                throw .invalidConfig(recipe.inputs[others[0]].parameters["weight"]?.location ?? location,
                                     "weights of tensor '\(recipe.output)' sum to zero, so they cannot be normalized")
            }
            coefficients = w.map { $0 / sum }
        }
        let merged = b.graph.add(.multislerp(weights: coefficients, eps: eps), offsets(inputs, others, base: base, type: type, b),
                                 type: type, stage: stage,
                                 note: note("weight=\(list(w)) normalize_weights=\(normalize)"
                                            + (base == nil ? "" : " (task vectors)")))
        return restore(merged, inputs, base: base, type: type, b)
    }

    func karcher(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        if inputs.count == 1 { return inputs[0] }
        let iterations = try recipe.shared.number("max_iter") ?? 10
        guard iterations == iterations.rounded(), abs(iterations) < 1e9 else {
            throw .invalidConfig(recipe.shared["max_iter"]?.location ?? location,
                                 "max_iter must be an integer, found \(formatAttribute(iterations))")
        }
        let tol = try recipe.shared.number("tol") ?? 1e-5
        return b.graph.add(.karcher(maxIter: max(0, Int(iterations)), tol: tol), inputs, type: type, stage: stage,
                           note: note("equal weights over \(inputs.count) inputs"))
    }
}
