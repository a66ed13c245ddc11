import Checkpoint

/// A failure while running a plan; names the file, directory or tensor involved.
public enum ExecutionError: Error, CustomStringConvertible {
    /// Reading an input checkpoint or writing an output shard or index failed.
    case checkpoint(CheckpointError)
    /// A file-system operation on the output directory failed (path, what went wrong).
    case io(path: String, String)
    /// The output directory exists, is not empty, and `--overwrite` was not given.
    case outputExists(path: String)
    /// The output directory is refused: it overlaps an input, the config or the working directory, or holds files a
    /// model output does not (path, why).
    case refused(path: String, String)
    /// Another run holds the output directory's lock (its pid, when it could be read).
    case locked(path: String, pid: Int?)
    /// A merged tensor has infinite or NaN values where none of its inputs had any.
    case nonFinite(tensor: String)
    /// A merge op has no defined result for these inputs (value, op, reason).
    case undefinedMerge(value: String, op: String, String)
    /// A kernel that does not make the statistics passes its declared cost promised the plan (a bug in that
    /// kernel's cost declaration, never the user's input).
    case planMismatch(String)

    /// The message shown to people.
    public var description: String {
        switch self {
        case .checkpoint(let e): return e.description
        case .io(let path, let message): return "\(path): \(message)"
        case .outputExists(let path):
            return "\(path): output directory exists and is not empty (use --overwrite to replace it)"
        case .refused(let path, let message): return "\(path): \(message)"
        case .locked(let path, let pid):
            return "\(path): another mergegraph run (pid \(pid.map(String.init) ?? "unknown")) is writing this output directory"
        case .nonFinite(let tensor):
            return "tensor \"\(tensor)\": the merge produced infinite or NaN values although none of its inputs has any "
                + "(use --allow-non-finite to write it anyway)"
        case .undefinedMerge(let value, let op, let reason): return "\(op) (\(value)): \(reason)"
        case .planMismatch(let message): return "internal error: the plan and a kernel disagree: \(message)"
        }
    }
}
