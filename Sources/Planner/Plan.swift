import IR

/// One model directory a plan writes: where (relative to OUT_DIR), its `config.json` and tokenizer donor.
public struct OutputTarget: Sendable {
    /// Relative to OUT_DIR; empty for OUT_DIR itself.
    public var directory: String
    /// The stage whose result goes there.
    public var stage: String
    /// The merged model's `config.json`.
    public var config: JSONValue?
    /// The checkpoint directory tokenizer files are copied from.
    public var tokenizerDonor: String?
}

/// A compiled merge: the graph, its schedule, and what goes beside the tensors in each output directory.
public struct Plan: Sendable {
    public var graph: Graph
    public var schedule: Schedule
    public var targets: [OutputTarget]
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
    /// Write every named stage to OUT_DIR/NAME (and the final stage, if any, to OUT_DIR) from one graph.
    public var allStages: Bool
    /// Seed of the randomized methods (dare_*, della*; `--random-seed`, 0 when not given). Every random op
    /// carries it with its own stream key, so the same seed gives the same bytes for any thread count.
    public var randomSeed: UInt64
    /// Memory budget, chunk size cap and threads the schedule is sized for.
    public var limits: Scheduler.Limits

    public init(outShardSize: Int = 5_000_000_000, stage: String? = nil, allStages: Bool = false,
                randomSeed: UInt64 = 0, limits: Scheduler.Limits = Scheduler.Limits()) {
        self.outShardSize = outShardSize
        self.stage = stage
        self.allStages = allStages
        self.randomSeed = randomSeed
        self.limits = limits
    }
}
