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

/// The order in which the executor runs a graph, where buffers die, and which shard gets each output.
public struct Schedule: Hashable, Sendable {
    public var steps: [ScheduleStep]
    public var shards: [Shard]
    /// The largest total size of live f32 buffers at any step.
    public var predictedPeakBytes: Int

    public init(steps: [ScheduleStep], shards: [Shard], predictedPeakBytes: Int) {
        self.steps = steps
        self.shards = shards
        self.predictedPeakBytes = predictedPeakBytes
    }

    /// The shard number (1-based) of each output index.
    public var shardOfOutput: [Int: Int] {
        var result: [Int: Int] = [:]
        for (i, shard) in shards.enumerated() {
            for o in shard.outputs { result[o] = i + 1 }
        }
        return result
    }
}
