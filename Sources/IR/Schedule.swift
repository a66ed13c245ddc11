/// One step of a schedule: compute a value, then write the outputs it completes and free dead buffers.
public struct ScheduleStep: Hashable, Sendable {
    public var value: ValueID
    /// Indices into `Graph.outputs` whose tensor is this value.
    public var writes: [Int]
    /// Values whose last use is this step.
    public var frees: [ValueID]

    public init(value: ValueID, writes: [Int], frees: [ValueID]) {
        self.value = value
        self.writes = writes
        self.frees = frees
    }
}

/// One output file and the outputs it holds, in write order.
public struct Shard: Hashable, Sendable {
    public var fileName: String
    public var outputs: [Int]
    public var byteCount: Int

    public init(fileName: String, outputs: [Int], byteCount: Int) {
        self.fileName = fileName
        self.outputs = outputs
        self.byteCount = byteCount
    }
}

/// Outputs of one shape computed together, chunk by chunk (the steps run once per chunk), and its memory.
public struct ChunkGroup: Hashable, Sendable {
    /// The values computed for every chunk, in order, with the outputs written and the chunk buffers freed.
    public var steps: [ScheduleStep]
    /// The shape every value of the group has.
    public var shape: [Int]
    /// Elements per row, the unit of chunking (a slice along dimension 0; the whole tensor below 2-D).
    public var rowElements: Int
    /// Rows per chunk.
    public var chunkRows: Int
    /// The most chunk buffers (f32, one chunk each) alive at once.
    public var liveBuffers: Int
    /// Bytes of kernel state held for the whole tensor (selection histograms, block sums, row scratch).
    public var stateBytes: Int
    /// Stored input bytes per chunk element (one load reads at a time, through a staging buffer).
    public var inputBytesPerElement: Int
    /// Values kept whole (f32) from their first computation to the end of the group, so that statistics
    /// passes do not recompute them.
    public var retained: [ValueID]

    public init(steps: [ScheduleStep], shape: [Int], rowElements: Int, chunkRows: Int, liveBuffers: Int,
                stateBytes: Int, inputBytesPerElement: Int, retained: [ValueID] = []) {
        self.steps = steps
        self.shape = shape
        self.rowElements = rowElements
        self.chunkRows = chunkRows
        self.liveBuffers = liveBuffers
        self.stateBytes = stateBytes
        self.inputBytesPerElement = inputBytesPerElement
        self.retained = retained
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// Rows to chunk: the length of dimension 0 (one row below 2-D).
    public var rowCount: Int { shape.count >= 2 ? shape[0] : 1 }

    /// Elements per chunk.
    public var chunkElements: Int { min(elementCount, rowElements * chunkRows) }

    /// Chunks per sweep over the tensor.
    public var chunkCount: Int { chunkElements == 0 ? 0 : (elementCount + chunkElements - 1) / chunkElements }

    /// Bytes held while the group runs with `rows` rows per chunk.
    public func bytes(rows: Int) -> Int {
        min(elementCount, rowElements * rows) * (4 * liveBuffers + inputBytesPerElement) + stateBytes
            + retained.count * elementCount * 4
    }

    /// Bytes held while the group runs.
    public var peakBytes: Int { bytes(rows: chunkRows) }
}

/// The order in which the executor runs a graph, chunk by chunk, which shard gets each output, and the memory
/// it will hold.
public struct Schedule: Hashable, Sendable {
    public var groups: [ChunkGroup]
    public var shards: [Shard]
    /// The memory budget the chunk sizes were chosen for.
    public var budgetBytes: Int
    /// Bytes held for the whole run besides the groups (output writers' conversion buffers).
    public var fixedBytes: Int

    public init(groups: [ChunkGroup], shards: [Shard], budgetBytes: Int, fixedBytes: Int) {
        self.groups = groups
        self.shards = shards
        self.budgetBytes = budgetBytes
        self.fixedBytes = fixedBytes
    }

    /// Every step, group after group.
    public var steps: [ScheduleStep] { groups.flatMap(\.steps) }

    /// The most bytes the executor holds at once: the largest group plus the fixed part.
    public var predictedPeakBytes: Int { (groups.map(\.peakBytes).max() ?? 0) + fixedBytes }

    /// The shard number (1-based) of each output index.
    public var shardOfOutput: [Int: Int] {
        var result: [Int: Int] = [:]
        for (i, shard) in shards.enumerated() {
            for o in shard.outputs { result[o] = i + 1 }
        }
        return result
    }
}
