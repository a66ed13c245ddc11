import IR
import Parser

/// Lowers one tensor of one merge method into IR ops over already-cast inputs.
struct MethodLowering {
    var spec: MethodSpec
    var recipe: TensorRecipe
    var stage: String
    var location: SourceLocation

    func lower(_ inputs: [ValueID], type: TensorType, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        switch spec.name {
        case "linear": return try linear(inputs, type: type, builder)
        case "task_arithmetic": return try taskArithmetic(inputs, type: type, builder)
        case "slerp": return try slerp(inputs, type: type, builder)
        case "model_stock": return try modelStock(inputs, type: type, builder)
        case "passthrough": return try passthrough(inputs, type: type, builder)
        default: throw .notImplemented(location, spec.name)
        }
    }

    private func note(_ text: String) -> String {
        [spec.name + " " + text, recipe.position].compactMap { $0 }.joined(separator: "; ")
    }

    private func weights(of indices: [Int]) throws(PlanError) -> [Double] {
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

    private func taskArithmetic(_ inputs: [ValueID], type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard let baseIndex = recipe.baseIndex else { throw .invalidConfig(location, "task_arithmetic needs base_model") }
        let base = inputs[baseIndex]
        let others = inputs.indices.filter { $0 != baseIndex }
        if others.isEmpty { return base }
        let w = try weights(of: others)
        let normalize = try recipe.shared.bool("normalize") ?? false
        let lambda = try recipe.shared.number("lambda") ?? 1
        var divisor = 1.0
        if normalize {
            divisor = w.reduce(0, +)
            if abs(divisor) < 1e-8 { divisor = 1 }
        }
        let deltas = others.map { b.graph.add(.sub, [inputs[$0], base], type: type, stage: stage) }
        let mix = b.graph.add(.weightedSum(w.map { lambda * $0 / divisor }), deltas, type: type, stage: stage,
                              note: note("weight=\(list(w)) lambda=\(formatAttribute(lambda)) normalize=\(normalize)"))
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

    private func list(_ values: [Double]) -> String { "[" + values.map(formatAttribute).joined(separator: ", ") + "]" }
}
