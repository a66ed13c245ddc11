import IR

/// A compiled merge: the graph, its schedule, and what goes beside the tensors in the output directory.
public struct Plan: Sendable {
    public var graph: Graph
    public var schedule: Schedule
    /// The merged model's `config.json`.
    public var outputConfig: JSONValue?
    /// The checkpoint directory tokenizer files are copied from.
    public var tokenizerDonor: String?
    /// Comment lines for `--dump-ir`.
    public var header: [String]
    /// Non-fatal findings (unused parameters), each "file:line:col: warning: …".
    public var warnings: [String]

    /// The `--dump-ir` text.
    public func dump() -> String {
        Printer(graph: graph, schedule: schedule, header: header).render()
    }
}

/// Settings that change what the planner produces.
public struct PlannerOptions: Sendable {
    /// The largest shard in bytes (mergekit's `--out-shard-size`, default 5B).
    public var outShardSize: Int
    /// Which named stage to output when every document is named.
    public var stage: String?

    public init(outShardSize: Int = 5_000_000_000, stage: String? = nil) {
        self.outShardSize = outShardSize
        self.stage = stage
    }
}
