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
}
