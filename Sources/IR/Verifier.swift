/// A structural problem found by the verifier.
public enum VerifierError: Error, CustomStringConvertible, Equatable {
    case forwardReference(ValueID, operand: ValueID)
    case wrongArity(ValueID, op: String, expected: Int, found: Int)
    case shapeMismatch(ValueID, op: String)
    case unknownModel(ValueID, model: Int)
    case badOutput(String, ValueID)
    case duplicateOutput(String)
    /// A cast whose attribute disagrees with its result type, or that casts to the dtype it already has.
    case badCast(ValueID, String)
    /// An attribute out of its range (see `Op.attributeProblem`).
    case badAttribute(ValueID, op: String, String)
    /// A schedule that does not describe a valid run of its graph.
    case badSchedule(String)
    /// An integer or BOOL value where only floats go (an arithmetic op, a cast), or a `copy_equal` whose operands
    /// and result are not all of one non-float dtype.
    case badNonFloat(ValueID, op: String, String)

    public var description: String {
        switch self {
        case .forwardReference(let v, let o): return "IR verifier: \(v) uses \(o), which is not defined before it"
        case .wrongArity(let v, let op, let e, let f): return "IR verifier: \(v) = \(op) takes \(e) operands, has \(f)"
        case .shapeMismatch(let v, let op): return "IR verifier: \(v) = \(op) has operands or result of different shapes"
        case .unknownModel(let v, let m): return "IR verifier: \(v) loads from unknown model @m\(m)"
        case .badOutput(let n, let v): return "IR verifier: output \"\(n)\" refers to undefined value \(v)"
        case .duplicateOutput(let n): return "IR verifier: output \"\(n)\" is defined twice"
        case .badCast(let v, let m): return "IR verifier: \(v) = cast: \(m)"
        case .badAttribute(let v, let op, let m): return "IR verifier: \(v) = \(op): \(m)"
        case .badSchedule(let m): return "IR verifier: schedule: \(m)"
        case .badNonFloat(let v, let op, let m): return "IR verifier: \(v) = \(op): \(m)"
        }
    }
}

/// Checks the invariants every pass relies on: SSA order, arities, shapes, cast types, attribute ranges, model
/// and output references; and that a schedule runs its graph (`verify(_:_:)`).
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
            if case .sceElectMerge(masked: true) = node.op, node.operands.count < 2 {
                // A task vector at least, then the mask.
                throw .wrongArity(id, op: node.op.mnemonic, expected: 2, found: node.operands.count)
            }
            if case .load(let model, _) = node.op, !graph.models.indices.contains(model) {
                throw .unknownModel(id, model: model)
            }
            if case .loraDelta(let model, _, _, _, _, _) = node.op {
                guard graph.models.indices.contains(model) else { throw .unknownModel(id, model: model) }
                guard graph.models[model].kind == .loraAdapter, node.type.shape.count == 2 else {
                    throw .badAttribute(id, op: node.op.mnemonic, "reads @m\(model), which is not a LoRA adapter, "
                                        + "or its result is not a matrix")
                }
            }
            if case .vocabularyGather(let gather) = node.op {
                if let source = gather.sources.first(where: { !graph.models.indices.contains($0.model) }) {
                    throw .unknownModel(id, model: source.model)
                }
                if let problem = gather.problem(resultShape: node.type.shape) {
                    throw .badAttribute(id, op: node.op.mnemonic, problem)
                }
            }
            if node.operands.contains(where: { graph[$0].type.shape != node.type.shape }) {
                throw .shapeMismatch(id, op: node.op.mnemonic)
            }
            try checkNonFloat(id, node, graph)
            if case .cast(let dtype) = node.op {
                if dtype != node.type.dtype {
                    throw .badCast(id, "attribute \(dtype.shortName) but result type \(node.type)")
                }
                if let operand = node.operands.first, graph[operand].type.dtype == dtype {
                    throw .badCast(id, "operand \(operand) is already \(dtype.shortName)")
                }
            }
            if let problem = node.op.attributeProblem(elementCount: node.type.elementCount) {
                throw .badAttribute(id, op: node.op.mnemonic, problem)
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

    /// Checks that `schedule` runs `graph`: every step's operands are computed earlier in its group, every value
    /// is computed once per group and freed once after its last use, every output is written by one step and
    /// lies in exactly one shard, the sweeps name steps of their group and end with an output sweep that computes
    /// every step writing an output; concurrent groups only with lanes, each within the lanes' window, the window
    /// within the budget.
    public static func verify(_ graph: Graph, _ schedule: Schedule) throws(VerifierError) {
        var written = [Int](repeating: 0, count: graph.outputs.count)
        for (g, group) in schedule.groups.enumerated() {
            var position: [ValueID: Int] = [:]
            var freed = Set<ValueID>()
            for (i, step) in group.steps.enumerated() {
                guard graph.nodes.indices.contains(step.value.index) else {
                    throw .badSchedule("group \(g) computes undefined value \(step.value)")
                }
                if position[step.value] != nil { throw .badSchedule("group \(g) computes \(step.value) twice") }
                for operand in graph[step.value].operands where position[operand] == nil || freed.contains(operand) {
                    throw .badSchedule("group \(g): \(step.value) reads \(operand), which is not live before it")
                }
                if graph[step.value].type.shape != group.shape {
                    throw .badSchedule("group \(g) of shape \(group.shape) computes \(step.value) : \(graph[step.value].type)")
                }
                position[step.value] = i
                for o in step.writes {
                    guard graph.outputs.indices.contains(o), graph.outputs[o].value == step.value else {
                        throw .badSchedule("group \(g): \(step.value) writes output \(o), which is not its value")
                    }
                    written[o] += 1
                }
                for v in step.frees {
                    guard position[v] != nil, freed.insert(v).inserted else {
                        throw .badSchedule("group \(g) frees \(v) at \(step.value), before computing it or twice")
                    }
                }
            }
            if let leak = position.keys.first(where: { !freed.contains($0) }) {
                throw .badSchedule("group \(g) never frees \(leak)")
            }
            guard let output = group.sweeps.last, output.observers.isEmpty else {
                throw .badSchedule("group \(g) does not end with an output sweep")
            }
            for (i, step) in group.steps.enumerated() where !step.writes.isEmpty && !output.computes.contains(i) {
                throw .badSchedule("group \(g)'s output sweep does not compute \(step.value), which it writes")
            }
            for (r, sweep) in group.sweeps.enumerated() {
                for s in sweep.observers + sweep.computes where !group.steps.indices.contains(s) {
                    throw .badSchedule("group \(g) sweep \(r) names step \(s) of \(group.steps.count)")
                }
            }
            for v in group.retained where position[v] == nil {
                throw .badSchedule("group \(g) keeps \(v) whole but never computes it")
            }
            for v in group.holding where position[v] == nil {
                throw .badSchedule("group \(g) lets \(v) hold its operands but never computes it")
            }
        }
        if let o = written.firstIndex(where: { $0 != 1 }) {
            throw .badSchedule("output \"\(graph.outputs[o].path)\" is written \(written[o]) times")
        }
        var inShard = [Int](repeating: 0, count: graph.outputs.count)
        for shard in schedule.shards {
            for o in shard.outputs where graph.outputs.indices.contains(o) { inShard[o] += 1 }
        }
        if let o = inShard.firstIndex(where: { $0 != 1 }) {
            throw .badSchedule("output \"\(graph.outputs[o].path)\" is in \(inShard[o]) shards")
        }
        // Lanes: concurrent groups only with more than one lane, each fitting the window, the window the budget.
        let concurrent = schedule.groups.indices.filter { schedule.groups[$0].concurrent }
        if schedule.lanes < 1 || (schedule.lanes == 1 && (!concurrent.isEmpty || schedule.laneWindowBytes != 0)) {
            throw .badSchedule("\(schedule.lanes) lane(s) with \(concurrent.count) concurrent group(s) and a window of "
                               + "\(schedule.laneWindowBytes) bytes")
        }
        if let g = concurrent.first(where: { schedule.groups[$0].laneBytes > schedule.laneWindowBytes }) {
            throw .badSchedule("concurrent group \(g) reserves \(schedule.groups[g].laneBytes) bytes, more than the "
                               + "lanes' window of \(schedule.laneWindowBytes)")
        }
        if schedule.laneWindowBytes > schedule.budgetBytes {
            throw .badSchedule("the lanes' window of \(schedule.laneWindowBytes) bytes exceeds the budget of "
                               + "\(schedule.budgetBytes)")
        }
    }
}

extension Verifier {
    /// Integer and BOOL values are only loaded and copied: a `copy_equal` has one non-float dtype throughout, and
    /// every other op but `load` has float operands and a float result.
    static func checkNonFloat(_ id: ValueID, _ node: Node, _ graph: Graph) throws(VerifierError) {
        switch node.op {
        case .load:
            return
        case .copyEqual:
            guard !node.type.dtype.isFloatingPoint,
                  node.operands.allSatisfy({ graph[$0].type.dtype == node.type.dtype }) else {
                throw .badNonFloat(id, op: node.op.mnemonic, "operands and result must all be one integer or bool dtype, "
                                   + "found \(node.operands.map { graph[$0].type.dtype.shortName }) → \(node.type.dtype.shortName)")
            }
        default:
            if let v = (node.operands + [id]).first(where: { !graph[$0].type.dtype.isFloatingPoint }) {
                throw .badNonFloat(id, op: node.op.mnemonic,
                                   "\(v) is \(graph[v].type.dtype.shortName), which is copied, never computed with")
            }
        }
    }
}
