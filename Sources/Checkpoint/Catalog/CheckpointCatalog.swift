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

    /// Describes the model a config reference names: directory `path`, or, when there is none, the model a remote
    /// resolver finds under that name at `revision` (a Hugging Face repo id: `org/name`, revision `main`).
    /// - Throws: an error whose description names the reference and what is wrong (no such directory nor repo,
    ///   no checkpoint, unreadable files, an unreachable Hub).
    func checkpoint(at path: String, revision: String?) throws -> CheckpointInfo

    /// Describes the PEFT LoRA adapter that `path` (and `revision`) names, the part after `+` of a model reference:
    /// a directory, or a remote repo as for `checkpoint(at:revision:)`.
    /// - Throws: an error whose description names the path and what is wrong (no adapter, unsupported variant).
    func adapter(at path: String, revision: String?) throws -> LoRAAdapterInfo
}

extension CheckpointCatalog {
    /// Directories only: `checkpoint(at:)` when `path` is one, else `CheckpointError.noSuchModel` (`.modelIsFile`
    /// for a file).
    public func checkpoint(at path: String, revision: String?) throws -> CheckpointInfo {
        guard hasCheckpointDirectory(at: path) else { throw CheckpointError.missingModel(path: path, remote: nil) }
        return try checkpoint(at: path)
    }

    /// Catalogs without adapters (test doubles) refuse every adapter path.
    public func adapter(at path: String, revision: String?) throws -> LoRAAdapterInfo {
        throw CheckpointError.invalidAdapter(path: path, detail: "this catalog holds no LoRA adapters")
    }
}
