/// One model directory a plan writes: where (relative to OUT_DIR), its `config.json` and tokenizer donor.
public struct OutputTarget: Sendable {
    /// Relative to OUT_DIR; empty for OUT_DIR itself.
    public var directory: String
    /// The stage whose result goes there.
    public var stage: String
    /// The merged model's `config.json` text as the planner serialized it (2-space indent, no trailing newline),
    /// or nil when the donor model has none.
    public var config: String?
    /// The checkpoint directory tokenizer files are copied from.
    public var tokenizerDonor: String?

    /// A target written to `directory` (relative to OUT_DIR) from `stage`.
    public init(directory: String, stage: String, config: String?, tokenizerDonor: String?) {
        self.directory = directory
        self.stage = stage
        self.config = config
        self.tokenizerDonor = tokenizerDonor
    }
}

/// One stage of a compiled config (a `name:`d document of a chain, or the final one) and its merge method.
public struct PlanStage: Hashable, Sendable {
    /// The stage's label: its `name`, or `<final>`.
    public var name: String
    /// Its `merge_method`.
    public var method: String

    public init(name: String, method: String) {
        self.name = name
        self.method = method
    }
}

/// A compiled merge: the graph, its schedule, and what goes beside the tensors in each output directory.
public struct Plan: Sendable {
    /// The verified dataflow graph: loads, ops and outputs.
    public var graph: Graph
    /// Its chunked schedule, shards and predicted memory.
    public var schedule: Schedule
    /// The model directories written (one, or one per stage with `--all-stages`).
    public var targets: [OutputTarget]
    /// Comment lines for `--dump-ir`.
    public var header: [String]
    /// Non-fatal findings (unused parameters), each "file:line:col: warning: …".
    public var warnings: [String]
    /// The stages compiled, in the order the header lists them.
    public var stages: [PlanStage] = []

    /// A plan of `graph` run in `schedule` order, writing `targets`.
    public init(graph: Graph, schedule: Schedule, targets: [OutputTarget], header: [String], warnings: [String]) {
        self.graph = graph
        self.schedule = schedule
        self.targets = targets
        self.header = header
        self.warnings = warnings
    }

    /// Every directory the plan reads: its input models and the donors of `config.json` and tokenizer files. An output
    /// directory must never replace, contain or lie inside one of them.
    public var inputDirectories: [String] {
        var seen = Set<String>()
        return (graph.models.map(\.path) + targets.compactMap(\.tokenizerDonor)).filter { seen.insert($0).inserted }
    }

    /// The `--dump-ir` text.
    public func dump() -> String {
        Printer(graph: graph, schedule: schedule, header: header).render()
    }
}
