import ArgumentParser
import Checkpoint
import IR

/// How `plan` (and `legacy`/`bakllama --plan-only`) print a compiled plan.
enum PlanFormat: String, ExpressibleByArgument, CaseIterable {
    /// The `--dump-ir` text.
    case text
    /// JSON for tools and CI checks; its schema is `schemas/plan.schema.json`.
    case json
    /// A Graphviz digraph: one cluster per output tensor group, shared nodes highlighted.
    case dot

    /// - Throws: `ValidationError` when `tensor` is given with the text format (it prints every group).
    func validate(tensor: String?) throws {
        if tensor != nil, self == .text { throw ValidationError("--tensor: only with --format json or dot") }
    }

    func render(_ plan: Plan, tensor: String? = nil) throws -> String {
        try validate(tensor: tensor)
        switch self {
        case .text:
            return plan.dump()
        case .json: return try PlanJSON(plan: plan, groups: plan.groupIndices(writing: tensor)).document.serialized() + "\n"
        case .dot: return try PlanDOT(plan: plan, groups: plan.groupIndices(writing: tensor)).text
        }
    }
}

extension Plan {
    /// The chunk groups to show: all, or the one writing output tensor `tensor`.
    func groupIndices(writing tensor: String?) throws -> [Int] {
        guard let tensor else { return Array(schedule.groups.indices) }
        let index = schedule.groups.firstIndex { group in
            group.steps.contains { step in step.writes.contains { graph.outputs[$0].name == tensor } }
        }
        guard let index else { throw ValidationError("--tensor: the plan writes no tensor named '\(tensor)'") }
        return [index]
    }

    /// For each value, the chunk group computing it.
    var groupOfValue: [ValueID: Int] {
        var result: [ValueID: Int] = [:]
        for (g, group) in schedule.groups.enumerated() {
            for step in group.steps where result[step.value] == nil { result[step.value] = g }
        }
        return result
    }

    /// The shards (1-based, as `--dump-ir` numbers them) written by each group.
    var shardsOfGroup: [[Int]] {
        let shardOf = schedule.shardOfOutput
        return schedule.groups.map { group in
            Array(Set(group.steps.flatMap(\.writes).compactMap { shardOf[$0] })).sorted()
        }
    }
}

/// The JSON form of a plan (`schemas/plan.schema.json`): stages, models, nodes (op, attributes, operands, type,
/// stages, group, shards), outputs, shards, the schedule's groups with their memory figures, and totals.
struct PlanJSON {
    var plan: Plan
    var groups: [Int]

    var document: JSONValue {
        let graph = plan.graph, schedule = plan.schedule
        let groupOf = plan.groupOfValue, shardsOf = plan.shardsOfGroup, shardOf = schedule.shardOfOutput
        let shown = Set(groups)
        let values = graph.values.filter { groupOf[$0].map(shown.contains) ?? false }
        let outputs = graph.outputs.indices.filter { groupOf[graph.outputs[$0].value].map(shown.contains) ?? false }
        let loads = graph.nodes.filter { if case .load = $0.op { return true } else { return false } }
        let peakGroup = schedule.groups.indices.max { schedule.groups[$0].peakBytes < schedule.groups[$1].peakBytes }
        let unlimited = schedule.budgetBytes >= Int.max / 8
        return .object([
            ("format", .string("mergegraph-plan")),
            ("version", .number("1")),
            ("stages", .array(plan.stages.map { stage in
                .object([("name", .string(stage.name)), ("method", .string(stage.method)),
                         ("output_directory", plan.targets.first { $0.stage == stage.name }.map { .string($0.directory) } ?? .null)])
            })),
            ("models", .array(graph.models.enumerated().map { i, model in
                .object([("id", .string("@m\(i)")), ("name", .string(model.name)), ("path", .string(model.path)),
                         ("kind", .string(model.kind.rawValue))])
            })),
            ("nodes", .array(values.map { id in
                let node = graph[id]
                var members: [(key: String, value: JSONValue)] = [
                    ("id", .string(id.description)), ("op", .string(node.op.mnemonic)),
                    ("attributes", .object(node.op.jsonAttributes)),
                    ("operands", .array(node.operands.map { .string($0.description) })),
                    ("type", Self.type(node.type)),
                    ("stages", .array(node.stages.map(JSONValue.string))),
                    ("group", .number(String(groupOf[id] ?? -1))),
                    ("shards", .array((groupOf[id].map { shardsOf[$0] } ?? []).map { .number(String($0)) })),
                ]
                if let note = node.note { members.append(("note", .string(note))) }
                return .object(members)
            })),
            ("outputs", .array(outputs.map { o in
                let output = graph.outputs[o]
                return .object([("name", .string(output.name)), ("value", .string(output.value.description)),
                                ("stage", output.stage.map(JSONValue.string) ?? .null),
                                ("directory", .string(output.directory)),
                                ("shard", .number(String(shardOf[o] ?? 0)))])
            })),
            ("shards", .array(schedule.shards.enumerated().map { i, shard in
                .object([("index", .number(String(i + 1))), ("file", .string(shard.fileName)),
                         ("bytes", .number(String(shard.byteCount))),
                         ("outputs", .array(shard.outputs.map { .string(graph.outputs[$0].path) }))])
            })),
            ("schedule", .object([
                ("threads", .number(String(schedule.threads))),
                ("lanes", .number(String(schedule.lanes))),
                ("lane_window_bytes", .number(String(schedule.laneWindowBytes))),
                ("groups", .array(groups.map { g in Self.group(schedule.groups[g], index: g, graph: graph) })),
            ])),
            ("memory", .object([
                ("budget_bytes", unlimited ? .null : .number(String(schedule.budgetBytes))),
                ("predicted_peak_bytes", .number(String(schedule.predictedPeakBytes))),
                ("peak_group", peakGroup.map { .number(String($0)) } ?? .null),
                ("declined_holding", schedule.declinedHolding.map { d in
                    .object([
                        ("groups", .array(d.groups.map { .number(String($0)) })),
                        ("added_bytes", .number(String(d.addedBytes))),
                        ("saved_element_steps", .number(String(d.savedElementSteps))),
                        ("steps_per_byte", .number(String(d.stepsPerByte))),
                    ])
                } ?? .null),
            ])),
            ("summary", .object([
                ("nodes", .number(String(graph.nodes.count))),
                ("load_requests", .number(String(graph.loadRequests))),
                ("unique_loads", .number(String(loads.count))),
                ("read_bytes", .number(String(graph.readBytes))),
                ("write_bytes", .number(String(schedule.shards.reduce(0) { $0 + $1.byteCount }))),
                ("outputs", .number(String(graph.outputs.count))),
            ])),
            ("warnings", .array(plan.warnings.map(JSONValue.string))),
        ])
    }

    static func type(_ type: TensorType) -> JSONValue {
        .object([("dtype", .string(type.dtype.shortName)), ("shape", .array(type.shape.map { .number(String($0)) }))])
    }

    static func group(_ group: ChunkGroup, index: Int, graph: Graph) -> JSONValue {
        .object([
            ("index", .number(String(index))),
            ("outputs", .array(group.steps.flatMap(\.writes).map { .string(graph.outputs[$0].path) })),
            ("shape", .array(group.shape.map { .number(String($0)) })),
            ("chunk_rows", .number(String(group.chunkRows))),
            ("chunks_per_pass", .number(String(group.chunkCount))),
            ("statistics_sweeps", .number(String(group.statisticsSweeps.count))),
            ("live_buffers", .number(String(group.liveBuffers))),
            ("buffer_bytes", .number(String(group.chunkElements * group.bufferBytesPerElement))),
            ("kernel_state_bytes", .number(String(group.stateBytes))),
            ("writer_bytes", .number(String(group.writerBytes))),
            ("kept_whole", .array(group.retained.map { .string($0.description) })),
            ("holding_operands", .array(group.holding.map { .string($0.description) })),
            ("peak_bytes", .number(String(group.peakBytes))),
            ("output_bytes", .number(String(group.outputBytes))),
            ("runs", .string(group.concurrent ? "lane" : "alone")),
            ("steps", .array(group.steps.map { step in
                .object([("value", .string(step.value.description)),
                         ("writes", .array(step.writes.map { .string(graph.outputs[$0].path) })),
                         ("frees", .array(step.frees.map { .string($0.description) }))])
            })),
        ])
    }
}

extension Op {
    /// The op's attributes as JSON members (`Op.namedAttributes`: what `--dump-ir` prints in parentheses, by name).
    var jsonAttributes: [(key: String, value: JSONValue)] {
        func number(_ x: Double) -> JSONValue { x.isFinite ? .number(formatAttribute(x)) : .string("\(x)") }
        return namedAttributes.map { name, value in
            switch value {
            case .number(let x): return (name, number(x))
            case .numbers(let xs): return (name, .array(xs.map(number)))
            case .integer(let n): return (name, .number(String(n)))
            case .unsigned(let n): return (name, .number(String(n)))
            case .bool(let b): return (name, .bool(b))
            case .text(let t): return (name, .string(t))
            }
        }
    }
}

/// The Graphviz form of a plan: one cluster per chunk group (the output tensors computed together), loads as
/// boxes naming their model, outputs as notes; a node used by several stages is drawn bold and filled, and nodes
/// are coloured by the stage that asks for them.
struct PlanDOT {
    var plan: Plan
    var groups: [Int]

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    var text: String {
        let graph = plan.graph, schedule = plan.schedule
        let shardOf = schedule.shardOfOutput
        var colour: [String: String] = [:]
        for (i, stage) in plan.stages.enumerated() { colour[stage.name] = Self.palette[i % Self.palette.count] }
        var lines = ["digraph plan {", "  rankdir=LR;", "  compound=true;",
                     "  node [fontname=\"Helvetica\", fontsize=10];", "  edge [color=\"#555555\"];"]
        if plan.stages.count > 1 {
            lines.append("  subgraph cluster_legend {")
            lines.append("    label=\"stages\"; style=dashed; fontname=\"Helvetica\";")
            for stage in plan.stages {
                lines.append("    \(Self.quote("stage " + stage.name)) [label=\(Self.quote("\(stage.name) (\(stage.method))")), "
                             + "shape=plaintext, fontcolor=\"\(colour[stage.name] ?? "black")\"];")
            }
            lines.append("    \"shared\" [label=\"used by several stages\", shape=box, style=\"filled,bold\", fillcolor=\"#fff2a8\"];")
            lines.append("  }")
        }
        var edges: [String] = []
        for g in groups {
            let group = schedule.groups[g]
            let written = group.steps.flatMap(\.writes).map { graph.outputs[$0].path }
            lines.append("  subgraph cluster_g\(g) {")
            lines.append("    label=\(Self.quote("group \(g): " + written.joined(separator: ", "))); "
                         + "fontname=\"Helvetica\"; fontsize=11; style=rounded; color=\"#999999\";")
            for step in group.steps {
                let id = step.value, node = graph[id]
                let label: String
                var attributes: [String] = []
                if case .load(let model, let tensor) = node.op {
                    label = "\(id) load @m\(model)\n\(graph.models[model].name)\n\(node.type)"
                    _ = tensor
                    attributes.append("shape=box")
                } else if case .loraDelta(let model, _, _, _, _, _) = node.op {
                    label = "\(id) \(node.op.mnemonic)\(node.op.attributes) @m\(model)\n\(graph.models[model].name)\n\(node.type)"
                    attributes.append("shape=box")
                } else {
                    label = "\(id) \(node.op.mnemonic)\(node.op.attributes)\n\(node.type)"
                    attributes.append("shape=ellipse")
                }
                let stageColour = node.stages.first.flatMap { colour[$0] } ?? "black"
                attributes.append("color=\"\(stageColour)\"")
                if node.stages.count > 1 {
                    attributes.append("style=\"filled,bold\"")
                    attributes.append("fillcolor=\"#fff2a8\"")
                    attributes.append("tooltip=\(Self.quote("used by " + node.stages.joined(separator: ", ")))")
                }
                lines.append("    \(Self.quote(id.description)) [label=\(Self.quote(label)), \(attributes.joined(separator: ", "))];")
                for operand in node.operands {
                    edges.append("  \(Self.quote(operand.description)) -> \(Self.quote(id.description));")
                }
                for o in step.writes {
                    let output = graph.outputs[o]
                    let name = "out \(output.path)"
                    lines.append("    \(Self.quote(name)) [label=\(Self.quote("\(output.path)\nshard \(shardOf[o] ?? 0)")), "
                                 + "shape=note, style=filled, fillcolor=\"#e8f0fe\"];")
                    edges.append("  \(Self.quote(id.description)) -> \(Self.quote(name));")
                }
            }
            lines.append("  }")
        }
        return (lines + edges + ["}"]).joined(separator: "\n") + "\n"
    }

    /// A DOT string literal.
    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
