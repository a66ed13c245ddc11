import IR

/// What the planner needs to know about one tensor of a checkpoint.
public struct TensorInfo: Hashable, Sendable {
    public var name: String
    public var type: TensorType

    public init(name: String, type: TensorType) {
        self.name = name
        self.type = type
    }
}

/// The metadata of an input checkpoint: its tensors (from safetensors headers) and its `config.json`.
public struct CheckpointInfo: Sendable {
    /// The directory, as resolved (absolute, symlinks resolved) — the identity used to dedupe loads.
    public var resolvedPath: String
    /// Tensor names in file order.
    public var tensorNames: [String]
    public var tensors: [String: TensorInfo]
    /// The raw `config.json`, if the checkpoint has one.
    public var configJSON: [UInt8]?

    public init(resolvedPath: String, tensorNames: [String], tensors: [String: TensorInfo], configJSON: [UInt8]?) {
        self.resolvedPath = resolvedPath
        self.tensorNames = tensorNames
        self.tensors = tensors
        self.configJSON = configJSON
    }
}

/// Reads checkpoint metadata for the planner; the executor provides the safetensors-backed implementation.
public protocol CheckpointCatalog {
    /// Describes the checkpoint at `path` (a directory), or throws a message naming the path.
    func checkpoint(at path: String) throws -> CheckpointInfo
}
