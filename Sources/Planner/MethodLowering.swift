import IR
import Parser

/// Lowers one tensor of one merge method into IR ops over already-cast inputs.
struct MethodLowering {
    var spec: MethodSpec
    var recipe: TensorRecipe
    var stage: String
    var location: SourceLocation
    /// `--random-seed`, put on the randomized pruning ops.
    var randomSeed: UInt64 = 0

    func lower(_ inputs: [ValueID], type: TensorType, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        switch spec.name {
        case "linear": return try linear(inputs, type: type, builder)
        case "task_arithmetic": return try taskVectors(inputs, type: type, builder, prune: nil, consensus: false)
        case "ties": return try taskVectors(inputs, type: type, builder, prune: .magnitude, consensus: true)
        case "breadcrumbs": return try taskVectors(inputs, type: type, builder, prune: .outliers, consensus: false)
        case "breadcrumbs_ties": return try taskVectors(inputs, type: type, builder, prune: .outliers, consensus: true)
        case "dare_ties": return try taskVectors(inputs, type: type, builder, prune: .random, consensus: true)
        case "dare_linear": return try taskVectors(inputs, type: type, builder, prune: .random, consensus: false)
        case "della": return try taskVectors(inputs, type: type, builder, prune: .della, consensus: true)
        case "della_linear": return try taskVectors(inputs, type: type, builder, prune: .della, consensus: false)
        case "ram", "ramplus_tl": return try ram(inputs, type: type, builder)
        case "slerp": return try slerp(inputs, type: type, builder)
        case "model_stock": return try modelStock(inputs, type: type, builder)
        case "passthrough": return try passthrough(inputs, type: type, builder)
        case "nearswap": return try nearSwap(inputs, type: type, builder)
        case "sce": return try sce(inputs, type: type, builder)
        case "nuslerp": return try nuslerp(inputs, type: type, builder)
        case "multislerp": return try multislerp(inputs, type: type, builder)
        case "karcher": return try karcher(inputs, type: type, builder)
        case "arcee_fusion": return try arceeFusion(inputs, type: type, builder)
        default: throw .notImplemented(location, spec.name)
        }
    }

    func note(_ text: String) -> String {
        [spec.name + " " + text, recipe.position].compactMap { $0 }.joined(separator: "; ")
    }

    func weights(of indices: [Int]) throws(PlanError) -> [Double] {
        var result: [Double] = []
        for i in indices {
            guard let w = try recipe.inputs[i].parameters.number("weight") else {
                throw .invalidConfig(recipe.inputs[i].location, "missing weight for tensor '\(recipe.inputs[i].tensor)'")
            }
            result.append(w)
        }
        return result
    }

    private func linear(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        let w = try weights(of: Array(inputs.indices))
        let normalize = try recipe.shared.bool("normalize") ?? true
        var coefficients = w
        if normalize {
            let sum = w.reduce(0, +)
            guard sum != 0 else {
                throw .invalidConfig(recipe.inputs[0].parameters["weight"]?.location ?? location,
                                     "weights of tensor '\(recipe.output)' sum to zero, so they cannot be normalized")
            }
            coefficients = w.map { $0 / sum }
        }
        return b.graph.add(.weightedSum(coefficients), inputs, type: type, stage: stage,
                           note: note("weight=\(list(w)) normalize=\(normalize)"))
    }

    /// How task vectors are sparsified before mixing.
    enum Pruning {
        /// Keep the `density` largest magnitudes (at least one).
        case magnitude
        /// Drop the `gamma` largest magnitudes, then the smallest, keeping `density` (breadcrumbs).
        case outliers
        /// Keep each element with probability `density` (DARE).
        case random
        /// Keep each element with a probability from `density − epsilon` to `density + epsilon` by its
        /// magnitude rank in its row (DELLA).
        case della
    }

    /// mergekit's generalized task arithmetic: deltas from the base, optional pruning, optional TIES sign
    /// consensus, weighted mixing (normalized by the weights when asked), times lambda, added to the base.
    private func taskVectors(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder,
                             prune: Pruning?, consensus: Bool) throws(PlanError) -> ValueID {
        guard let baseIndex = recipe.baseIndex else { throw .invalidConfig(location, "\(spec.name) needs base_model") }
        let base = inputs[baseIndex]
        let others = inputs.indices.filter { $0 != baseIndex }
        if others.isEmpty { return base }
        let w = try weights(of: others)
        let normalize = try recipe.shared.bool("normalize") ?? false
        let rescale = try recipe.shared.bool("rescale") ?? false
        let lambda = try recipe.shared.number("lambda") ?? 1
        var deltas: [ValueID] = []
        var densities: [String] = []
        for i in others {
            var delta = b.graph.add(.sub, [inputs[i], base], type: type, stage: stage)
            if let prune {
                let density = try recipe.inputs[i].parameters.number("density") ?? 1
                densities.append(formatAttribute(density))
                delta = try sparsify(delta, input: i, prune, density: density, rescale: rescale, type: type, b)
            }
            deltas.append(delta)
        }
        let summary = "weight=\(list(w))" + (densities.isEmpty ? "" : " density=[\(densities.joined(separator: ", "))]")
            + " lambda=\(formatAttribute(lambda)) normalize=\(normalize)"
        let mix: ValueID
        if consensus {
            let sign = b.graph.add(.signElect(weights: w), deltas, type: type, stage: stage)
            mix = b.graph.add(.disjointMerge(weights: w, normalize: normalize, lambda: lambda), [sign] + deltas,
                              type: type, stage: stage, note: note(summary))
        } else {
            var divisor = 1.0
            if normalize {
                divisor = w.reduce(0, +)
                if abs(divisor) < 1e-8 { divisor = 1 }
            }
            mix = b.graph.add(.weightedSum(w.map { lambda * $0 / divisor }), deltas, type: type, stage: stage,
                              note: note(summary))
        }
        return b.graph.add(.add, [base, mix], type: type, stage: stage)
    }

    private func slerp(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard let baseIndex = recipe.baseIndex else { throw .invalidConfig(location, "slerp needs base_model") }
        guard let t = try recipe.shared.number("t") else { throw .invalidConfig(location, "slerp needs parameter t") }
        guard (0...1).contains(t) else {
            throw .invalidConfig(recipe.shared["t"]?.location ?? location,
                                 "t must be between 0 and 1, found \(formatAttribute(t)) for tensor '\(recipe.output)'")
        }
        return b.graph.add(.slerp(t: t), [inputs[baseIndex], inputs[1 - baseIndex]], type: type, stage: stage,
                           note: recipe.position)
    }

    private func modelStock(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard let baseIndex = recipe.baseIndex else { throw .invalidConfig(location, "model_stock needs base_model") }
        let filterWise = try recipe.shared.bool("filter_wise") ?? false
        let ordered = [inputs[baseIndex]] + inputs.indices.filter { $0 != baseIndex }.map { inputs[$0] }
        return b.graph.add(.modelStock(filterWise: filterWise), ordered, type: type, stage: stage,
                           note: note("base first"))
    }

    private func passthrough(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard let scale = try recipe.inputs[0].parameters.number("scale") else { return inputs[0] }
        return b.graph.add(.scale(scale), [inputs[0]], type: type, stage: stage)
    }

    func list(_ values: [Double]) -> String { "[" + values.map(formatAttribute).joined(separator: ", ") + "]" }
}
