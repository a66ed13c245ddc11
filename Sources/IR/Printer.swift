import Foundation

/// Renders a scheduled graph as text for `--dump-ir`: per output tensor, its nodes in SSA form, then a summary.
public struct Printer {
    public var graph: Graph
    public var schedule: Schedule
    /// Comment lines printed first (file, inputs, stages).
    public var header: [String]

    public init(graph: Graph, schedule: Schedule, header: [String] = []) {
        self.graph = graph
        self.schedule = schedule
        self.header = header
    }

    public func render() -> String {
        var out: [String] = header.map { "// \($0)" }
        for (i, model) in graph.models.enumerated() {
            out.append("// @m\(i) = \(model.name)\(model.name == model.path ? "" : "  (\(model.path))")"
                       + (model.kind == .loraAdapter ? "  LoRA adapter" : ""))
        }
        let shardOf = schedule.shardOfOutput
        let multiStage = Set(graph.nodes.flatMap(\.stages)).count > 1
        // With several output directories (`--all-stages`) each `out` line names its own, as the header does.
        let directories = Set(graph.outputs.map(\.directory)).count > 1
        for group in schedule.groups {
            var pending: [String] = []
            var frees: [ValueID] = []
            var first = true
            for step in group.steps {
                pending.append(line(for: step.value, multiStage: multiStage))
                frees += step.frees
                guard !step.writes.isEmpty else { continue }
                let output = graph.outputs[step.writes[0]]
                out.append("")
                out.append("tensor \"\(output.name)\" : \(graph[output.value].type)")
                if first {
                    out.append("  // " + chunking(group))
                    first = false
                }
                out.append(contentsOf: pending)
                pending.removeAll()
                for o in step.writes {
                    let output = graph.outputs[o]
                    out.append("  out \"\(output.name)\" shard \(shardOf[o] ?? 0) = \(output.value)"
                               + (directories ? "  // → OUT_DIR/\(output.directory)" : ""))
                }
                if !frees.isEmpty {
                    out.append("  free " + frees.sorted().map(\.description).joined(separator: " "))
                    frees.removeAll()
                }
            }
        }
        out.append("")
        out.append(contentsOf: summary())
        return out.joined(separator: "\n") + "\n"
    }

    func line(for id: ValueID, multiStage: Bool) -> String {
        let node = graph[id]
        var text = "  \(id) = \(node.op.mnemonic)\(node.op.attributes)"
        if case .load(let model, let tensor) = node.op {
            text += " @m\(model) \"\(tensor)\""
        } else if case .loraDelta(let model, let a, let b, _, _, _) = node.op {
            text += " @m\(model) \"\(b)\" · \"\(a)\""
        } else if case .vocabularyGather(let gather) = node.op, let own = gather.sources.first {
            text += " @m\(own.model) \"\(own.tensor)\""
        } else {
            text += " " + node.operands.map(\.description).joined(separator: ", ")
        }
        text += " : \(node.type)"
        var comments: [String] = []
        if let note = node.note { comments.append(note) }
        if multiStage, !node.stages.isEmpty {
            comments.append((node.stages.count > 1 ? "used by " : "stage ") + node.stages.joined(separator: ", "))
        }
        if !comments.isEmpty { text = text.padding(to: 72) + "  // " + comments.joined(separator: "; ") }
        return text
    }

    func summary() -> [String] {
        let loads = graph.nodes.filter { if case .load = $0.op { return true } else { return false } }
        let readBytes = graph.readBytes
        let writeBytes = schedule.shards.reduce(0) { $0 + $1.byteCount }
        return [
            "// summary: \(graph.nodes.count) nodes; \(graph.loadRequests) loads requested, \(loads.count) unique; "
                + "\(formatBytes(readBytes)) to read",
            "// output: \(graph.outputs.count) tensors, \(formatBytes(writeBytes)) in \(schedule.shards.count) shard(s): "
                + schedule.shards.map(\.fileName).joined(separator: ", "),
            "// schedule: \(schedule.groups.count) chunked groups, \(schedule.steps.count) steps per chunk pass",
            "// memory: budget \(schedule.budgetBytes >= Int.max / 8 ? "unlimited" : formatBytes(schedule.budgetBytes)); "
                + "predicted peak \(formatBytes(schedule.predictedPeakBytes))" + largest(),
        ] + declined() + lanes()
    }

    /// The holding the planner declined, if any.
    private func declined() -> [String] {
        guard let d = schedule.declinedHolding else { return [] }
        let names = d.groups.prefix(3).map { g in tensorName(schedule.groups[g]).map { "'\($0)'" } ?? "group \(g)" }
        let more = d.groups.count > 3 ? ", …" : ""
        let ratio = Double(d.savedElementSteps) / Double(max(1, d.addedBytes))
        return ["// holding declined on \(d.groups.count) tensor group(s) (\(names.joined(separator: ", "))\(more)): "
                + "it would add \(formatBytes(d.addedBytes)) for \(d.savedElementSteps) element-steps of recomputation, "
                + String(format: "%.1f", ratio) + " per byte (at least \(d.stepsPerByte) wanted)"]
    }

    /// How many groups run at once, and which.
    private func lanes() -> [String] {
        guard schedule.lanes > 1 else { return [] }
        let concurrent = schedule.groups.filter(\.concurrent).count
        let which = concurrent == schedule.groups.count ? "all \(concurrent) groups"
            : "\(concurrent) of \(schedule.groups.count) groups (the others alone on all threads)"
        return ["// lanes: \(schedule.lanes), one thread each: \(which) run beside each other within "
                + "\(formatBytes(schedule.laneWindowBytes))"]
    }

    /// Where the predicted peak is reached: a tensor, or the lanes' window.
    private func largest() -> String {
        if schedule.laneWindowBytes > 0, schedule.laneWindowBytes >= (schedule.groups.map(\.peakBytes).max() ?? 0) {
            return " (the lanes' window)"
        }
        guard let group = schedule.groups.max(by: { $0.peakBytes < $1.peakBytes }),
              let name = tensorName(group) else { return "" }
        return " at tensor \"\(name)\""
    }

    /// The name of the first output tensor `group` writes, if it writes one.
    private func tensorName(_ group: ChunkGroup) -> String? {
        group.steps.first(where: { !$0.writes.isEmpty }).map { graph.outputs[$0.writes[0]].name }
    }

    /// How a group runs: chunk size, live buffers, kernel state.
    func chunking(_ group: ChunkGroup) -> String {
        let size = group.shape.count >= 2 ? "\(group.chunkRows) of \(group.rowCount) rows" : "whole tensor"
        let sweeps = group.statisticsSweeps.count
        return "chunks: \(size) (\(group.chunkCount) per pass); "
            + (sweeps == 0 ? "" : "\(sweeps) statistics sweep\(sweeps == 1 ? "" : "s"); ")
            + "\(group.liveBuffers) live buffers of "
            + "\(formatBytes(group.chunkElements * group.bufferBytesPerElement)); kernel state \(formatBytes(group.stateBytes)); "
            + (group.writerBytes == 0 ? "" : "writers \(formatBytes(group.writerBytes)); ")
            + (group.retained.isEmpty ? ""
                : "kept whole across passes: \(group.retained.map(\.description).joined(separator: " ")); ")
            + (group.holding.isEmpty ? ""
                : "holding their operands: \(group.holding.map(\.description).joined(separator: " ")); ")
            + "peak \(formatBytes(group.peakBytes))"
            + (schedule.lanes > 1 ? (group.concurrent ? "; on one lane" : "; alone on \(schedule.threads) threads") : "")
    }
}

/// Formats a byte count for people (`1.5 MiB`).
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

/// `bytes` for a message: `formatBytes` with the exact count beside it ("512.0 MiB (536870912 bytes)"), or the
/// count alone below 1 KiB ("1 byte", "300 bytes"), where the two would say the same.
public func formatByteCount(_ bytes: Int) -> String {
    if bytes < 1024 { return bytes == 1 ? "1 byte" : "\(bytes) bytes" }
    return "\(formatBytes(bytes)) (\(bytes) bytes)"
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
