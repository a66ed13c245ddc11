/// How the executor runs a plan (the worker threads are the plan's: `Schedule.threads`).
public struct ExecutionOptions: Sendable {
    public var copyTokenizer: Bool
    /// Write the model card (`README.md`) and `mergekit_config.yml` (mergekit's `--write-model-card`, on by default).
    public var writeModelCard = true
    /// Replace a non-empty output directory.
    public var overwrite: Bool
    /// Paths the output directory may not replace, contain (or, for input models, lie inside) besides the plan's
    /// input directories: the config file and the working directory.
    public var protectedPaths: [ProtectedPath] = []
    /// Write merged tensors with infinite or NaN values that none of their inputs had (an error otherwise).
    public var allowNonFinite = false
    /// Whether a task vector's load and subtraction run as one step (`LoadSubtractChunkKernel`); tests turn it off
    /// to compare.
    public var fusesLoadSubtractions = true
    /// Whether task vectors kept whole as bf16 planes are handed packed to kernels that read planes themselves (SCE's
    /// mix: `ChunkKernel.readsBF16Planes`) instead of unpacked into chunk buffers each sweep; tests turn it off to
    /// compare.
    public var handsOverPlanes = true
    /// Continue a killed run of the same plan from the shards its ledger records (`ShardLedger`); with `partition`,
    /// keep the worker's recorded shards that still match.
    public var resume = false
    /// Compute only this worker's shards, into the shared output directory (`PartitionOutput`).
    public var partition: PartitionID?
    /// Called with notes for the user (a resumable partial output found, shards kept on resuming).
    public var onNote: (@Sendable (String) -> Void)?
    /// Called after each shard is complete (file name, tensors in it).
    public var onShardDone: (@Sendable (String, Int) -> Void)?
    /// Called after every chunk written and every tensor finished.
    public var onProgress: (@Sendable (RunProgress) -> Void)?

    public init(copyTokenizer: Bool = true, overwrite: Bool = false,
                onShardDone: (@Sendable (String, Int) -> Void)? = nil,
                onProgress: (@Sendable (RunProgress) -> Void)? = nil) {
        self.copyTokenizer = copyTokenizer
        self.overwrite = overwrite
        self.onShardDone = onShardDone
        self.onProgress = onProgress
    }
}

/// How far a run has come: output tensors finished and output bytes written, of their totals.
public struct RunProgress: Sendable {
    public var tensorsDone = 0
    public var tensorCount: Int
    public var bytesWritten = 0
    public var byteCount: Int

    public init(tensorCount: Int, byteCount: Int) {
        self.tensorCount = tensorCount
        self.byteCount = byteCount
    }
}
