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

/// One sweep of a group over the tensor: the steps whose kernels observe their operands' chunks (one statistics
/// pass each; none in the output sweep) and the steps computed to feed them or the outputs (indices into
/// `ChunkGroup.steps`, in step order). Steps kept whole by an earlier sweep are read from there, not recomputed.
public struct Sweep: Hashable, Sendable {
    public var observers: [Int]
    public var computes: [Int]

    public init(observers: [Int], computes: [Int]) {
        self.observers = observers
        self.computes = computes
    }
}

/// What a group holds during one of its sweeps, to be multiplied out by the chunk size.
public struct PhaseMemory: Hashable, Sendable {
    /// Chunk buffers (one chunk each, `ChunkGroup.bufferBytesPerElement` bytes per element) allocated by the end of the sweep (the pool never shrinks in a group).
    public var buffers: Int
    /// Bytes per chunk element of the input staging buffer by the end of the sweep.
    public var stagingBytesPerElement: Int
    /// Kernel state held during the sweep (sum over the group's kernels of their phase's bytes).
    public var stateBytes: Int
    /// Values kept whole as chunk buffers are (`ChunkGroup.bufferBytesPerElement` bytes per element) by the end
    /// of the sweep.
    public var wholeValues: Int
    /// Values kept whole as 2-byte planes of their dtype (`ChunkGroup.keepsAsPlane`) by the end of the sweep.
    public var wholePlanes: Int

    public init(buffers: Int, stagingBytesPerElement: Int, stateBytes: Int, wholeValues: Int, wholePlanes: Int = 0) {
        self.buffers = buffers
        self.stagingBytesPerElement = stagingBytesPerElement
        self.stateBytes = stateBytes
        self.wholeValues = wholeValues
        self.wholePlanes = wholePlanes
    }
}

/// Outputs of one shape computed together, chunk by chunk, and its memory: the statistics sweeps, then the output
/// sweep writing the outputs (the last of `sweeps`); the steps' `frees` give every chunk buffer back after its last
/// reader in every sweep.
public struct ChunkGroup: Hashable, Sendable {
    /// The values computed for every chunk, in order, with the outputs written and the chunk buffers freed.
    public var steps: [ScheduleStep]
    /// The shape every value of the group has.
    public var shape: [Int]
    /// Elements per row, the unit of chunking (a slice along dimension 0; the whole tensor below 2-D).
    public var rowElements: Int
    /// Rows per chunk.
    public var chunkRows: Int
    /// The statistics sweeps in order, then the output sweep (empty only before scheduling).
    public var sweeps: [Sweep]
    /// Memory of each sweep (one entry per sweep).
    public var phases: [PhaseMemory]
    /// Values kept whole (f32, or planes of 2-byte patterns: `keepsAsPlane`) from their first computation to the end
    /// of the group, so that statistics passes do not recompute them.
    public var retained: [ValueID]
    /// Steps whose kernels hold their operands themselves (`KernelCost.holdingOperands`): after their first
    /// `operandPasses` passes no sweep computes operands for them.
    public var holding: [ValueID]
    /// Shards (0-based) whose writer opens before the group runs.
    public var opensShards: [Int]
    /// Shards (0-based) finished after the group.
    public var closesShards: [Int]
    /// Bytes of the output writers open while the group runs.
    public var writerBytes: Int
    /// Bytes each chunk buffer holds per element: 4 (an f32) for float groups; an integer or BOOL group holds its
    /// stored elements as bytes in the same buffers, so 8 for one with int64 values.
    public var bufferBytesPerElement: Int
    /// Bytes of the outputs the group writes, in their stored dtypes (set by the scheduler): what a concurrent group
    /// holds when it finishes before the groups ahead of it are written, until they are.
    public var outputBytes: Int = 0
    /// Runs on one lane — one thread, its kernels' loops not split — beside the schedule's other concurrent groups
    /// (`Schedule.lanes` > 1); false: alone, once every group before it is written, its kernels' loops on all
    /// `Schedule.threads` threads.
    public var concurrent = false
    /// The most kernels that finish a statistics pass at once, each holding its finishing bytes
    /// (`KernelCost.finishingBytes`): 1 for a group planned on a lane (even when it runs its lane's plan alone on
    /// every thread); 0, as many as the schedule's threads.
    public var finishingThreads = 0

    public init(steps: [ScheduleStep], shape: [Int], rowElements: Int, chunkRows: Int, sweeps: [Sweep] = [],
                phases: [PhaseMemory], retained: [ValueID] = [], holding: [ValueID] = [], opensShards: [Int] = [],
                closesShards: [Int] = [], writerBytes: Int = 0, bufferBytesPerElement: Int = 4) {
        self.steps = steps
        self.shape = shape
        self.rowElements = rowElements
        self.chunkRows = chunkRows
        self.sweeps = sweeps
        self.phases = phases
        self.retained = retained
        self.holding = holding
        self.opensShards = opensShards
        self.closesShards = closesShards
        self.writerBytes = writerBytes
        self.bufferBytesPerElement = bufferBytesPerElement
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// Rows to chunk: the length of dimension 0 (one row below 2-D).
    public var rowCount: Int { shape.count >= 2 ? shape[0] : 1 }

    /// Elements per chunk.
    public var chunkElements: Int { min(elementCount, rowElements * chunkRows) }

    /// Chunks per sweep over the tensor.
    public var chunkCount: Int { chunkElements == 0 ? 0 : (elementCount + chunkElements - 1) / chunkElements }

    /// The statistics sweeps (all but the output sweep).
    public var statisticsSweeps: ArraySlice<Sweep> { sweeps.dropLast() }

    /// The most chunk buffers allocated at once (those of the output sweep).
    public var liveBuffers: Int { phases.map(\.buffers).max() ?? 0 }

    /// The most kernel state held in any sweep.
    public var stateBytes: Int { phases.map(\.stateBytes).max() ?? 0 }

    /// Bytes held in `phase` with `rows` rows per chunk: chunk buffers, staging, kernel state, whole values and
    /// open writers.
    public func bytes(phase: PhaseMemory, rows: Int) -> Int {
        let chunk = min(elementCount, rowElements * rows)
        return chunk * (bufferBytesPerElement * phase.buffers + phase.stagingBytesPerElement) + phase.stateBytes
            + phase.wholeValues * elementCount * bufferBytesPerElement + phase.wholePlanes * elementCount * 2
            + writerBytes
    }

    /// Whether a value of `dtype` kept whole across sweeps is kept as a plane of its 2-byte patterns (bf16, f16 in
    /// a group of f32 chunk buffers: every element a kernel writes is of its node's dtype, so the plane holds it
    /// exactly) rather than as f32: half the bytes, at the price of packing each chunk into the plane once and
    /// unpacking it into a chunk buffer in each later sweep that reads it.
    public func keepsAsPlane(_ dtype: DType) -> Bool {
        bufferBytesPerElement == 4 && (dtype == .bf16 || dtype == .f16)
    }

    /// Bytes per element a value of `dtype` takes kept whole: 2 as a plane (`keepsAsPlane`), else
    /// `bufferBytesPerElement`.
    public func keptBytesPerElement(_ dtype: DType) -> Int {
        keepsAsPlane(dtype) ? 2 : bufferBytesPerElement
    }

    /// The most bytes held in any sweep with `rows` rows per chunk.
    public func bytes(rows: Int) -> Int { phases.map { bytes(phase: $0, rows: rows) }.max() ?? writerBytes }

    /// The most bytes held while the group runs.
    public var peakBytes: Int { bytes(rows: chunkRows) }

    /// The bytes a concurrent group reserves from the lanes' window (`Schedule.laneWindowBytes`) while it runs: its
    /// peak and its outputs, which it buffers while a group ahead of it is still being written.
    public var laneBytes: Int { peakBytes + outputBytes }
}

/// The order in which the executor runs a graph, chunk by chunk, which shard gets each output, and the memory
/// it will hold.
public struct Schedule: Hashable, Sendable {
    public var groups: [ChunkGroup]
    public var shards: [Shard]
    /// The memory budget the chunk sizes were chosen for.
    public var budgetBytes: Int
    /// The worker threads the kernels' state was sized for; the executor runs with exactly these.
    public var threads: Int
    /// Groups the executor may run at once, each on one thread (1: one group at a time). Concurrent groups
    /// (`ChunkGroup.concurrent`) start in schedule order while what the groups in flight reserve stays within
    /// `laneWindowBytes` (a running group its `laneBytes`, a finished one not yet written its buffered outputs and
    /// writers); their outputs are written in schedule order, so the files are the bytes of one group at a time.
    public var lanes: Int
    /// The bytes the concurrent groups in flight may reserve together (`ChunkGroup.laneBytes` each, at least one
    /// group's always): `lanes` times the largest concurrent group's, plus the most a finished one keeps (its
    /// `outputBytes` and `writerBytes`), within the budget; 0 without concurrent groups.
    public var laneWindowBytes: Int
    /// The groups whose kernels offered to hold their operands and were declined it because holding would not pay
    /// for the memory it adds (the planner's `Scheduler.amortizedHolding`); nil when none was. Groups whose holding
    /// would save no work are not listed (declining it is no choice).
    public var declinedHolding: DeclinedHolding?

    public init(groups: [ChunkGroup], shards: [Shard], budgetBytes: Int, threads: Int = 1, lanes: Int = 1,
                laneWindowBytes: Int = 0, declinedHolding: DeclinedHolding? = nil) {
        self.groups = groups
        self.shards = shards
        self.budgetBytes = budgetBytes
        self.threads = threads
        self.lanes = lanes
        self.laneWindowBytes = laneWindowBytes
        self.declinedHolding = declinedHolding
    }

    /// Every step, group after group.
    public var steps: [ScheduleStep] { groups.flatMap(\.steps) }

    /// The most bytes the executor holds at once: the largest group's peak (writers included), or the lanes' window
    /// if larger. With one lane it is what the run measures, byte for byte; with concurrent groups, a bound (how the
    /// lanes' groups overlap depends on their timing).
    public var predictedPeakBytes: Int { max(groups.map(\.peakBytes).max() ?? 0, laneWindowBytes) }

    /// The shard number (1-based) of each output index.
    public var shardOfOutput: [Int: Int] {
        var result: [Int: Int] = [:]
        for (i, shard) in shards.enumerated() {
            for o in shard.outputs { result[o] = i + 1 }
        }
        return result
    }
}

/// Holding that the planner declined: the kernels of `groups` offered to hold their operands (`KernelCost.holding`)
/// within the budget, but together they would have added `addedBytes` to what the run touches at most for
/// `savedElementSteps` of recomputation (a step's op over one element in one sweep), fewer than the
/// `stepsPerByte` asked per byte.
public struct DeclinedHolding: Hashable, Sendable {
    /// Indices of the groups planned without holding, in schedule order.
    public var groups: [Int]
    /// Bytes their holding would have added (the planner's estimate of what a run touches, not the lanes' window).
    public var addedBytes: Int
    /// Element-steps of recomputation their holding would have saved.
    public var savedElementSteps: Int
    /// The least element-steps per added byte that holding had to save.
    public var stepsPerByte: Int

    public init(groups: [Int], addedBytes: Int, savedElementSteps: Int, stepsPerByte: Int) {
        self.groups = groups
        self.addedBytes = addedBytes
        self.savedElementSteps = savedElementSteps
        self.stepsPerByte = stepsPerByte
    }
}
