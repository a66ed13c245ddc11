import IR

/// Runs one scheduled group of kernels over a tensor chunk by chunk, exactly as its `ChunkGroup` says: each
/// statistics sweep (its observers make one pass each, fed by the steps it computes), then the output sweep
/// computing what the outputs need. Chunk buffers are freed at the schedule's `frees`; values kept whole are computed
/// once, into whole-tensor buffers (bf16 and f16 values into planes of their 2-byte patterns,
/// `ChunkGroup.keepsAsPlane`, packed and unpacked in parallel blocks), and read from there afterwards; a bf16 plane
/// whose readers in a sweep all read planes themselves is handed to them packed (`ChunkOperands.planes`), its chunk
/// buffer taken but not written. The runner decides nothing the plan does not say, so the plan's memory prediction is
/// what the run holds.
final class ChunkRunner {
    /// One step's kernel, the entries (earlier ones) whose values are its operands, and the entries whose chunk
    /// buffers are freed after it.
    struct Entry {
        var kernel: ChunkKernel
        var operands: [Int]
        var frees: [Int]
    }

    let entries: [Entry]
    let sweeps: [Sweep]
    let elementCount: Int
    /// Elements per chunk (a whole number of rows).
    let chunkElements: Int
    private let pool: BufferPool
    /// Where the kernels' finishing bytes are reserved.
    private let memory: MemoryAccount
    /// The most observers that finish a pass at once (`ChunkGroup.finishingThreads`; 0: `parallel`'s threads).
    private let finishingThreads: Int
    /// Runs the observers' `finishPass` concurrently.
    private let parallel: Parallel
    /// Entries kept whole across sweeps instead of being recomputed: as f32 in `kept`, or as 2-byte planes of their
    /// dtype in `planes` (unpacked into a chunk buffer in each later sweep that reads them, unless handed over packed).
    private let retain: Set<Int>
    /// Entries whose kernels hold their operands themselves: in the sweeps after their operand passes they get
    /// none (`ChunkOperands.pointers` empty).
    private let holding: Set<Int>
    /// Floats in a whole-tensor buffer (`elementCount` times the buffer words per element).
    private let wholeCount: Int
    private var kept: [Int: AccountedBuffer<Float>] = [:]
    /// The dtypes of the entries kept whole as 2-byte planes (`ChunkGroup.keepsAsPlane`), and their planes.
    private let planeDTypes: [Int: DType]
    private var planes: [Int: AccountedBuffer<UInt16>] = [:]
    private var complete = Set<Int>()
    /// Whether kept bf16 planes that a sweep's kernels all read themselves (`ChunkKernel.readsBF16Planes`) are
    /// handed to them packed (`ChunkOperands.planes`) instead of unpacked into chunk buffers.
    private let handsOverPlanes: Bool
    /// Planes handed over packed so far, one per plane and sweep (`RunCounters.planesHandedOver`).
    private(set) var planesHandedOver = 0

    /// A runner of `entries` over `elementCount` elements, `chunkElements` at a time, in buffers of
    /// `bufferBytesPerElement` bytes per element (4: f32 values; 8 for a group of int64 tensors, which chunk buffers
    /// hold as their bytes).
    init(entries: [Entry], sweeps: [Sweep], elementCount: Int, chunkElements: Int, bufferBytesPerElement: Int = 4,
         memory: MemoryAccount, retain: Set<Int> = [], planes: [Int: DType] = [:], holding: Set<Int> = [],
         parallel: Parallel = Parallel(threads: 1), finishingThreads: Int = 0, handsOverPlanes: Bool = true) {
        self.entries = entries
        self.handsOverPlanes = handsOverPlanes
        self.parallel = parallel
        self.sweeps = sweeps
        self.elementCount = elementCount
        self.chunkElements = max(1, min(chunkElements, elementCount))
        self.retain = retain
        planeDTypes = planes.filter { retain.contains($0.key) }
        self.holding = holding
        self.memory = memory
        self.finishingThreads = finishingThreads
        wholeCount = elementCount * max(1, bufferBytesPerElement / 4)
        pool = BufferPool(memory: memory, capacity: self.chunkElements * max(1, bufferBytesPerElement / 4))
    }

    /// Runs the statistics sweeps, then the output sweep (the last of `sweeps`), calling `sink(k, range, values)` for output entry
    /// `outputs[k]` on each chunk in order.
    /// - Throws: what the kernels throw; `ExecutionError.planMismatch` when a kernel's passes disagree with the plan.
    func run(outputs: [Int],
             sink: (Int, Range<Int>, UnsafePointer<Float>) throws(ExecutionError) -> Void) throws(ExecutionError) {
        guard let last = sweeps.last, last.observers.isEmpty else {
            throw .planMismatch("the group's last sweep is not an output sweep")
        }
        for (r, sweep) in sweeps.dropLast().enumerated() {
            for o in sweep.observers where !entries[o].kernel.beginPass() {
                throw .planMismatch("step \(o) made fewer statistics passes than the plan's sweep \(r + 1) needs")
            }
            try self.sweep(computes: Set(sweep.computes), observers: Set(sweep.observers), outputs: []) { _, _, _ throws(ExecutionError) in }
            let observers = UncheckedKernels(kernels: sweep.observers.map { entries[$0].kernel })
            // What the observers may take while they finish, reserved for as many at once as there are threads.
            let finishers = Parallel(threads: finishingThreads > 0 ? min(finishingThreads, parallel.threads) : parallel.threads)
            let finishing = KernelCost.finishingBytes(observers.kernels.map(\.finishBytes), threads: finishers.threads)
            memory.charge(finishing)
            finishers.forEachTask(count: observers.kernels.count, bounded: finishing > 0) {
                observers.kernels[$0].finishPass()
            }
            memory.release(finishing)
            for o in sweep.observers { try entries[o].kernel.endPass() }
        }
        for e in last.computes where entries[e].kernel.beginPass() {
            throw .planMismatch("step \(e) wants more statistics passes than the plan gives it")
        }
        try sweep(computes: Set(last.computes), observers: [], outputs: outputs, sink: sink)
    }

    private func sweep(computes: Set<Int>, observers: Set<Int>, outputs: [Int],
                       sink: (Int, Range<Int>, UnsafePointer<Float>) throws(ExecutionError) -> Void) throws(ExecutionError) {
        var sinksAt: [Int: [Int]] = [:]
        for (k, e) in outputs.enumerated() { sinksAt[e, default: []].append(k) }
        for e in computes where !observers.contains(e) && !complete.contains(e) { entries[e].kernel.beginSweep() }
        let packed = packedPlanes(computes: computes, observers: observers, outputs: sinksAt)
        planesHandedOver += packed.count

        var buffers = [AccountedBuffer<Float>?](repeating: nil, count: entries.count)
        var values = [UnsafeMutablePointer<Float>?](repeating: nil, count: entries.count)
        var start = 0
        while start < elementCount {
            let range = start..<min(elementCount, start + chunkElements)
            for e in entries.indices {
                if observers.contains(e) || computes.contains(e) {
                    if packed.contains(e) {
                        // Read by its kernels from the plane itself: the chunk buffer the plan counts is taken, not
                        // written (nothing reads `values[e]`), so the run holds what the plan predicts.
                        buffers[e] = pool.take()
                        values[e] = ChunkRunner.packedPlaceholder
                    } else if complete.contains(e), let plane = planes[e], let dtype = planeDTypes[e] {
                        let buffer = pool.take()
                        buffers[e] = buffer
                        let from = SendablePointer(UnsafePointer(plane.pointer))
                        let into = SendablePointer(buffer.pointer - range.lowerBound)
                        parallel.forEachBlock(in: range) {
                            MergeDTypeRounding.unpack(from.pointer, as: dtype, into: into.pointer, $0)
                        }
                        values[e] = buffer.pointer
                    } else if complete.contains(e) {
                        values[e] = kept[e]!.pointer + range.lowerBound
                    } else {
                        let computed = entries[e].operands.allSatisfy { values[$0] != nil }
                        guard computed || holding.contains(e) else {
                            throw .planMismatch("step \(e)'s operands are not computed in the sweep that needs them")
                        }
                        var operands = ChunkOperands(
                            pointers: computed ? entries[e].operands.map { UnsafePointer(values[$0]!) } : [],
                            range: range)
                        if computed, entries[e].operands.contains(where: packed.contains) {
                            operands.planes = entries[e].operands.map { packed.contains($0) ? UnsafePointer(planes[$0]!.pointer) : nil }
                        }
                        if observers.contains(e) {
                            try entries[e].kernel.observe(operands)
                        } else {
                            let out: UnsafeMutablePointer<Float>
                            if retain.contains(e), planeDTypes[e] == nil {
                                let whole = kept[e] ?? pool.allocateWhole(count: wholeCount)
                                kept[e] = whole
                                out = whole.pointer + range.lowerBound
                            } else {
                                let buffer = pool.take()
                                buffers[e] = buffer
                                out = buffer.pointer
                            }
                            try entries[e].kernel.produce(operands, into: out)
                            values[e] = out
                            if retain.contains(e), let dtype = planeDTypes[e] {
                                let plane = planes[e] ?? pool.allocatePlane(count: elementCount)
                                planes[e] = plane
                                let from = SendablePointer(UnsafePointer(out - range.lowerBound))
                                let into = SendablePointer(plane.pointer)
                                parallel.forEachBlock(in: range) {
                                    MergeDTypeRounding.pack(from.pointer, as: dtype, into: into.pointer, $0)
                                }
                            }
                        }
                    }
                    if let out = values[e] { for k in sinksAt[e] ?? [] { try sink(k, range, out) } }
                }
                for dead in entries[e].frees {
                    if let b = buffers[dead] { pool.give(b) }
                    buffers[dead] = nil
                    values[dead] = nil
                }
            }
            start = range.upperBound
        }
        for e in computes where retain.contains(e) { complete.insert(e) }
    }

    /// The entries kept whole as bf16 planes that this sweep hands to their readers packed: read in it (observed
    /// or computed), written to no output, and read only by kernels computed in it that read planes themselves.
    private func packedPlanes(computes: Set<Int>, observers: Set<Int>, outputs: [Int: [Int]]) -> Set<Int> {
        guard handsOverPlanes else { return [] }
        var packed = Set<Int>()
        for (e, dtype) in planeDTypes where dtype == .bf16 && complete.contains(e) && outputs[e] == nil
            && (computes.contains(e) || observers.contains(e)) {
            let readers = entries.indices.filter { r in
                (computes.contains(r) || observers.contains(r)) && !complete.contains(r) && entries[r].operands.contains(e)
            }
            if !readers.isEmpty, readers.allSatisfy({ entries[$0].kernel.readsBF16Planes && !holding.contains($0) }) {
                packed.insert(e)
            }
        }
        return packed
    }

    /// What `values` holds for an entry handed over packed: never read (its readers take `ChunkOperands.planes`).
    nonisolated(unsafe) private static let packedPlaceholder = UnsafeMutablePointer<Float>.allocate(capacity: 16)
}

/// The chunk buffers of one group, all of one capacity, reused from chunk to chunk and sweep to sweep; they are
/// given back when the group ends.
final class BufferPool {
    let capacity: Int
    private let memory: MemoryAccount
    private var free: [AccountedBuffer<Float>] = []

    init(memory: MemoryAccount, capacity: Int) {
        self.memory = memory
        self.capacity = capacity
    }

    func take() -> AccountedBuffer<Float> {
        free.popLast() ?? memory.allocate(Float.self, count: capacity, zeroed: false)
    }

    func give(_ buffer: AccountedBuffer<Float>) { free.append(buffer) }

    /// A whole-tensor buffer outside the pool, counted like the pooled ones.
    func allocateWhole(count: Int) -> AccountedBuffer<Float> {
        memory.allocate(Float.self, count: count, zeroed: false)
    }

    /// A whole-tensor plane of 2-byte patterns outside the pool, counted like the pooled buffers.
    func allocatePlane(count: Int) -> AccountedBuffer<UInt16> {
        memory.allocate(UInt16.self, count: count, zeroed: false)
    }
}

/// The kernels of one sweep's observers, handed to worker threads for `finishPass` (which touches only its own
/// kernel's state).
private struct UncheckedKernels: @unchecked Sendable {
    let kernels: [ChunkKernel]
}
