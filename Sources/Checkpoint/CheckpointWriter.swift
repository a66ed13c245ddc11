import IR

/// Writes a merged checkpoint in one format: opens each shard with its tensor layout, and writes the index of a
/// sharded checkpoint. File names come from `ShardNaming`.
public protocol CheckpointWriter: Sendable {
    /// Bytes of memory one open shard holds until it is finished (its conversion buffers). The planner budgets
    /// `SafetensorsWriter.byteCount` per open shard, so a writer must hold at most that.
    var bytesPerOpenShard: Int { get }

    /// Creates (or truncates) the shard file `path` holding `tensors` in this order (dtype: what each is stored as;
    /// shape: dimensions, outermost first) and `metadata` (string pairs, e.g. safetensors' `__metadata__`), and writes
    /// its header; `observer` (if any) sees every byte written (`ShardBytesObserver`).
    /// - Throws: `CheckpointError` naming the file: a tensor listed twice, an invalid shape, a failed create or write.
    func openShard(path: String, tensors: [(name: String, dtype: DType, shape: [Int])],
                   metadata: [String: String], observer: (any ShardBytesObserver)?) throws(CheckpointError)
        -> any CheckpointShardWriter

    /// Writes the index of a sharded checkpoint into `directory`: `weightMap` maps each tensor name to its shard file
    /// name (relative to `directory`), `totalSize` is the tensors' stored bytes.
    /// - Throws: `CheckpointError.writeFailed` naming the index file.
    func writeIndex(directory: String, weightMap: [String: String], totalSize: Int) throws(CheckpointError)
}
