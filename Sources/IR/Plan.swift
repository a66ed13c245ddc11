/// A file written beside the tensors: text made by the planner, or a copy of an input's file.
public struct SideFile: Hashable, Sendable {
    public enum Contents: Hashable, Sendable {
        /// The file's text.
        case text(String)
        /// A copy of the file at this path.
        case copy(String)
    }

    /// The file's name in the output directory.
    public var name: String
    public var contents: Contents

    public init(name: String, contents: Contents) {
        self.name = name
        self.contents = contents
    }
}

/// The tokenizer files of an output directory.
public struct TokenizerFiles: Hashable, Sendable {
    /// The tokenizer and generation files copied from a donor model when it has them (mergekit's `_copy_tokenizer`).
    public static let copiedNames = [
        "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
        "added_tokens.json", "vocab.json", "merges.txt", "vocab.txt", "chat_template.jinja",
        "generation_config.json", "chat_template.json",
    ]

    public var files: [SideFile]
    /// Whether they are written even with `--no-copy-tokenizer`: a tokenizer built for the merged vocabulary is part
    /// of the model (mergekit saves it whatever `copy_tokenizer` says); a donor's tokenizer is a copy.
    public var required: Bool

    public init(files: [SideFile], required: Bool) {
        self.files = files
        self.required = required
    }
}

/// The model card of an output directory, as mergekit's `generate_card` lays it out (`mergekit/card.py`), written
/// offline: YAML front matter, a title (the output directory's name, known when it is written), the body.
public struct ModelCard: Hashable, Sendable {
    /// The front matter's YAML lines (between the `---` lines).
    public var frontMatter: String
    /// Everything after the title.
    public var body: String
    /// The config text, written as `mergekit_config.yml` as mergekit writes it.
    public var configText: String

    public init(frontMatter: String, body: String, configText: String) {
        self.frontMatter = frontMatter
        self.body = body
        self.configText = configText
    }

    /// The `README.md` text for an output directory named `name`.
    public func text(name: String) -> String {
        "---\n" + frontMatter + "---\n# " + name + "\n\n" + body
    }
}

/// One model directory a plan writes: where (relative to OUT_DIR), its `config.json` and tokenizer donor.
public struct OutputTarget: Sendable {
    /// Relative to OUT_DIR; empty for OUT_DIR itself.
    public var directory: String
    /// The stage whose result goes there.
    public var stage: String
    /// The merged model's `config.json` text as the planner serialized it (2-space indent, no trailing newline),
    /// or nil when the donor model has none.
    public var config: String?
    /// The checkpoint directory of the base model (or the first model), which `config.json` starts from and
    /// tokenizer files are copied from.
    public var tokenizerDonor: String?
    /// The tokenizer files written (nil: none).
    public var tokenizer: TokenizerFiles?
    /// The model card (`README.md`) and `mergekit_config.yml`, written unless `--no-write-model-card` says otherwise.
    public var modelCard: ModelCard?

    /// A target written to `directory` (relative to OUT_DIR) from `stage`.
    public init(directory: String, stage: String, config: String?, tokenizerDonor: String?,
                tokenizer: TokenizerFiles? = nil) {
        self.directory = directory
        self.stage = stage
        self.config = config
        self.tokenizerDonor = tokenizerDonor
        self.tokenizer = tokenizer
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
    /// The config text as given (its SHA-256 goes into every shard's metadata).
    public var configText = ""

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

/// The version of mergegraph, written into every output shard's metadata (`mergegraph_version`).
public enum MergegraphVersion {
    public static let string = "0.2.0"
}
