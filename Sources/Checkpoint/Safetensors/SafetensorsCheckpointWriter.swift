import IR

/// Writes safetensors checkpoints: shards with `SafetensorsWriter`, the index as `model.safetensors.index.json`.
public struct SafetensorsCheckpointWriter: CheckpointWriter {
    /// A writer of safetensors shards.
    public init() {}

    /// `SafetensorsWriter.byteCount`: the conversion buffers of one shard.
    public var bytesPerOpenShard: Int { SafetensorsWriter.byteCount }

    /// Opens a `SafetensorsWriter` on `path` with the given layout and metadata (`{"format": "pt"}` added).
    /// - Throws: the errors of `SafetensorsWriter.init(path:tensors:metadata:observer:)`.
    public func openShard(path: String, tensors: [(name: String, dtype: DType, shape: [Int])],
                          metadata: [String: String], observer: (any ShardBytesObserver)?) throws(CheckpointError)
        -> any CheckpointShardWriter {
        try SafetensorsWriter(path: path, tensors: tensors, metadata: metadata.merging(["format": "pt"]) { _, pt in pt },
                              observer: observer)
    }

    /// Writes `directory/model.safetensors.index.json`; see `SafetensorsWriter.writeIndex(directory:weightMap:totalSize:)`.
    public func writeIndex(directory: String, weightMap: [String: String], totalSize: Int) throws(CheckpointError) {
        try SafetensorsWriter.writeIndex(directory: directory, weightMap: weightMap, totalSize: totalSize)
    }
}
