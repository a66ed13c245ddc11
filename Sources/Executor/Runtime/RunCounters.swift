import Synchronization

/// What a run did that the plan does not show, counted for tests and diagnostics (`PlanExecutor.counters`).
public final class RunCounters: Sendable {
    private let fusedSteps = Atomic<Int>(0)
    private let handedOver = Atomic<Int>(0)

    public init() {}

    /// `.sub` steps computed with their minuend's load in one pass (`LoadSubtractChunkKernel`), summed over the
    /// groups run (a group run once per tensor it computes).
    public var fusedLoadSubtractions: Int { fusedSteps.load(ordering: .relaxed) }

    func noteFusedLoadSubtractions(_ count: Int) {
        fusedSteps.add(count, ordering: .relaxed)
    }

    /// Kept bf16 planes handed packed to the kernels reading them (`ChunkOperands.planes`) instead of unpacked into
    /// chunk buffers, one per plane and sweep, summed over the groups run.
    public var planesHandedOver: Int { handedOver.load(ordering: .relaxed) }

    func notePlanesHandedOver(_ count: Int) {
        handedOver.add(count, ordering: .relaxed)
    }
}
