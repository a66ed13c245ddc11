/// One IR node: an op applied to earlier values, with its result type.
public struct Node: Hashable, Sendable {
    public var op: Op
    public var operands: [ValueID]
    public var type: TensorType
    /// Stages (multi-document configs) whose lowering asked for this node, in first-use order.
    public var stages: [String]
    /// What the node means in config terms (method and resolved parameters), for `--dump-ir`.
    public var note: String?

    public init(op: Op, operands: [ValueID], type: TensorType, stages: [String] = [], note: String? = nil) {
        self.op = op
        self.operands = operands
        self.type = type
        self.stages = stages
        self.note = note
    }
}

/// An input checkpoint of the graph.
public struct ModelInput: Hashable, Sendable {
    /// What an input directory holds.
    public enum Kind: String, Hashable, Sendable {
        /// A model checkpoint (safetensors or PyTorch `.bin`).
        case checkpoint
        /// A PEFT LoRA adapter (`adapter_config.json`, `adapter_model.safetensors`), read by `lora_delta` ops and by
        /// loads of the tensors it replaces.
        case loraAdapter = "lora_adapter"
    }

    /// The reference as written in the config.
    public var name: String
    /// The resolved directory that holds its files.
    public var path: String
    /// Whether it is a checkpoint or a LoRA adapter.
    public var kind: Kind

    public init(name: String, path: String, kind: Kind = .checkpoint) {
        self.name = name
        self.path = path
        self.kind = kind
    }
}

/// A tensor of a merged model: its name, the value it takes, the stage that produced it, and the
/// output directory (relative to OUT_DIR; empty for OUT_DIR itself) it is written to.
public struct GraphOutput: Hashable, Sendable {
    public var name: String
    public var value: ValueID
    public var stage: String?
    public var directory: String

    public init(name: String, value: ValueID, stage: String? = nil, directory: String = "") {
        self.name = name
        self.value = value
        self.stage = stage
        self.directory = directory
    }

    /// Where the tensor lands: `directory/name`.
    public var path: String { directory.isEmpty ? name : "\(directory)/\(name)" }
}
