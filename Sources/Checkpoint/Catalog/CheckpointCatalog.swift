/// Answers the planner's questions about model paths: is there a checkpoint directory, and what it holds. Reads no
/// tensor data. `LocalCheckpointCatalog` reads the file system; tests can answer from memory.
public protocol CheckpointCatalog {
    /// Whether `path` (relative to the working directory, or absolute) names an existing directory — a model
    /// directory candidate. A config name that is not a directory may name a stage instead; whether the directory
    /// holds a readable checkpoint is `checkpoint(at:)`'s to say.
    func hasCheckpointDirectory(at path: String) -> Bool

    /// Describes the checkpoint in directory `path`.
    /// - Throws: an error whose description names the path and what is wrong (no checkpoint, unreadable files).
    func checkpoint(at path: String) throws -> CheckpointInfo

    /// Describes the PEFT LoRA adapter in directory `path` (the part after `+` of a model reference).
    /// - Throws: an error whose description names the path and what is wrong (no adapter, unsupported variant).
    func adapter(at path: String) throws -> LoRAAdapterInfo
}

extension CheckpointCatalog {
    /// Catalogs without adapters (test doubles) refuse every adapter path.
    public func adapter(at path: String) throws -> LoRAAdapterInfo {
        throw CheckpointError.invalidAdapter(path: path, detail: "this catalog holds no LoRA adapters")
    }
}
