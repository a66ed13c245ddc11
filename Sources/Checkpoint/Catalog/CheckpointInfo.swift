/// The metadata of an input checkpoint: its tensors (from headers, whatever the format) and its `config.json`.
public struct CheckpointInfo: Sendable {
    /// The directory, as resolved (absolute, symlinks resolved) — the identity used to dedupe loads.
    public var resolvedPath: String
    /// Tensor names in the checkpoint's order (`CheckpointReader.tensorNames`).
    public var tensorNames: [String]
    /// Every tensor, by name.
    public var tensors: [String: TensorInfo]
    /// The raw bytes of `config.json`, if the checkpoint has one.
    public var configJSON: [UInt8]?

    /// Metadata of the checkpoint at `resolvedPath`.
    public init(resolvedPath: String, tensorNames: [String], tensors: [String: TensorInfo], configJSON: [UInt8]?) {
        self.resolvedPath = resolvedPath
        self.tensorNames = tensorNames
        self.tensors = tensors
        self.configJSON = configJSON
    }
}
