import IR

/// Settings that change what the planner produces.
public struct PlannerOptions: Sendable {
    /// The largest shard in bytes (mergekit's `--out-shard-size`, default 5B).
    public var outShardSize: Int
    /// Which named stage to output when every document is named.
    public var stage: String?
    /// Write every named stage to OUT_DIR/NAME (and the final stage, if any, to OUT_DIR) from one graph.
    public var allStages: Bool
    /// Seed of the randomized methods (dare_*, della*; `--random-seed`, 0 when not given). Every random op
    /// carries it with its own stream key, so the same seed gives the same bytes for any thread count.
    public var randomSeed: UInt64
    /// Memory budget, chunk size cap and threads the schedule is sized for.
    public var limits: Scheduler.Limits
    /// mergekit's `--unsafe-truncate-embeddings`: inputs whose vocabulary-axis tensors (embeddings, output heads)
    /// have more rows than the smallest keep only its first rows (token ids assumed identical).
    public var unsafeTruncateEmbeddings = false
    /// mergekit's `--lora-merge-dtype`: the dtype a `base+adapter` model is loaded in and its adapter applied in
    /// (nil: the base's `config.json` dtype, else its first float tensor's, as transformers' `dtype="auto"` picks it).
    public var loraMergeDType: DType?

    /// Options with mergekit's defaults: 5B shards, the final stage, seed 0, no memory limit to speak of.
    public init(outShardSize: Int = 5_000_000_000, stage: String? = nil, allStages: Bool = false,
                randomSeed: UInt64 = 0, limits: Scheduler.Limits = Scheduler.Limits()) {
        self.outShardSize = outShardSize
        self.stage = stage
        self.allStages = allStages
        self.randomSeed = randomSeed
        self.limits = limits
    }
}
