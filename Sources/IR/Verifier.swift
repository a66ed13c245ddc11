/// A structural problem found by the verifier.
public enum VerifierError: Error, CustomStringConvertible, Equatable {
    case forwardReference(ValueID, operand: ValueID)
    case wrongArity(ValueID, op: String, expected: Int, found: Int)
    case shapeMismatch(ValueID, op: String)
    case unknownModel(ValueID, model: Int)
    case badOutput(String, ValueID)
    case duplicateOutput(String)

    public var description: String {
        switch self {
        case .forwardReference(let v, let o): return "IR verifier: \(v) uses \(o), which is not defined before it"
        case .wrongArity(let v, let op, let e, let f): return "IR verifier: \(v) = \(op) takes \(e) operands, has \(f)"
        case .shapeMismatch(let v, let op): return "IR verifier: \(v) = \(op) has operands or result of different shapes"
        case .unknownModel(let v, let m): return "IR verifier: \(v) loads from unknown model @m\(m)"
        case .badOutput(let n, let v): return "IR verifier: output \"\(n)\" refers to undefined value \(v)"
        case .duplicateOutput(let n): return "IR verifier: output \"\(n)\" is defined twice"
        }
    }
}

/// Checks the invariants every pass relies on: SSA order, arities, shapes, model and output references.
public enum Verifier {
    public static func verify(_ graph: Graph) throws(VerifierError) {
        for id in graph.values {
            let node = graph[id]
            for operand in node.operands where operand >= id || operand.index < 0 {
                throw .forwardReference(id, operand: operand)
            }
            if let arity = node.op.arity, arity != node.operands.count {
                throw .wrongArity(id, op: node.op.mnemonic, expected: arity, found: node.operands.count)
            }
            if node.op.arity == nil, node.operands.isEmpty {
                throw .wrongArity(id, op: node.op.mnemonic, expected: 1, found: 0)
            }
            if case .load(let model, _) = node.op, !graph.models.indices.contains(model) {
                throw .unknownModel(id, model: model)
            }
            if node.operands.contains(where: { graph[$0].type.shape != node.type.shape }) {
                throw .shapeMismatch(id, op: node.op.mnemonic)
            }
            if let expected = node.op.weightCount.map({ $0 + node.op.leadingOperands }), expected != node.operands.count {
                throw .wrongArity(id, op: node.op.mnemonic, expected: expected, found: node.operands.count)
            }
        }
        var seen = Set<String>()
        for output in graph.outputs {
            if !graph.nodes.indices.contains(output.value.index) { throw .badOutput(output.name, output.value) }
            if !seen.insert(output.path).inserted { throw .duplicateOutput(output.path) }
        }
    }
}
