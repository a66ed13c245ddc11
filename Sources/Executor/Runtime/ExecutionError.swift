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
    /// `finalize` found partitions that have not run or did not finish, or shards missing, unreadable or damaged:
    /// the output directory and, per problem, the partition (1-based) to rerun, the partition count and what is wrong.
    case partitionsIncomplete(path: String, problems: [PartitionProblem])
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
                + "(a value beyond the range of the merge's or the output's dtype, e.g. past 65504 in float16, becomes "
                + "infinite, whether an input's cast to the merge dtype or a result; use --allow-non-finite to write it anyway)"
        case .undefinedMerge(let value, let op, let reason): return "\(op) (\(value)): \(reason)"
        case .planMismatch(let message): return "internal error: the plan and a kernel disagree: \(message)"
        case .partitionsIncomplete(let path, let problems):
            let partitions = Set(problems.map(\.partition)).sorted()
            let count = problems.first?.count ?? 0
            // A partition without a ledger may never have run: "rerun" alone would not fit it.
            let verb = problems.contains { $0.kind == .notFinished } ? "run (or rerun)" : "rerun"
            return "\(path): cannot finalize: " + problems.map(\.description).joined(separator: "; ") + "; \(verb) "
                + partitions.map { "--partition \($0)/\(count)" }.joined(separator: ", ")
                + " (mergegraph run CONFIG OUT --partition I/N), then finalize again"
        }
    }
}

extension ExecutionError {
    /// What went wrong, without the path when the error names one in front (`.io`'s message: "cannot read: Is a
    /// directory"); the whole description otherwise. For messages that name the file themselves.
    public var reason: String {
        if case .io(_, let message) = self { return message }
        return description
    }
}

/// One reason `finalize` cannot finish: the partition (1-based) to rerun, of `count`, and what is wrong.
public struct PartitionProblem: Sendable, Equatable, CustomStringConvertible {
    /// What is wrong with a partition.
    public enum Kind: Sendable, Equatable {
        /// The partition has no ledger: it has not run, or its worker failed and withdrew its shards and ledger (the
        /// two leave the same files); one problem for all its shards.
        case notFinished
        /// One of its shards is not as its ledger records: what is wrong, naming the shard
        /// ("model-00002-of-00004.safetensors is missing").
        case shard(String)
    }

    /// The partition to rerun, from 1.
    public var partition: Int
    /// The number of partitions.
    public var count: Int
    /// What is wrong.
    public var kind: Kind

    /// A problem of partition `partition` of `count`.
    public init(partition: Int, count: Int, kind: Kind) {
        self.partition = partition
        self.count = count
        self.kind = kind
    }

    /// The problem as `finalize` reports it, naming the partition: "partition 2/3 has not run or did not finish",
    /// "partition 2/3: model-00002-of-00004.safetensors is missing".
    public var description: String {
        switch kind {
        case .notFinished: return "partition \(partition)/\(count) has not run or did not finish"
        case .shard(let message): return "partition \(partition)/\(count): \(message)"
        }
    }
}
