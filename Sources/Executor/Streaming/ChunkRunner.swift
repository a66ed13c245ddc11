/// Runs a group of kernels (in evaluation order, operands before users) over a tensor chunk by chunk: as many
/// statistics rounds as the kernels ask for, each a sweep computing only what the observing kernels read, then
/// one sweep producing the outputs. Chunk buffers come from a pool that is counted in the memory account.
/// Retained entries are computed once, into whole-tensor buffers, and read from there in later sweeps.
final class ChunkRunner {
    /// One kernel and the entries (earlier in the list) whose outputs are its operands.
    struct Entry {
        var kernel: ChunkKernel
        var operands: [Int]
    }

    let entries: [Entry]
    let elementCount: Int
    /// Elements per chunk (a whole number of rows).
    let chunkElements: Int
    private let pool: BufferPool
    /// Entries kept whole across sweeps instead of being recomputed.
    private let retain: Set<Int>
    private var kept: [Int: AccountedBuffer<Float>] = [:]
    private var complete = Set<Int>()

    init(entries: [Entry], elementCount: Int, chunkElements: Int, pool: BufferPool, retain: Set<Int> = []) {
        self.entries = entries
        self.elementCount = elementCount
        self.chunkElements = max(1, min(chunkElements, elementCount))
        self.pool = pool
        self.retain = retain
        pool.resize(capacity: self.chunkElements)
    }

    /// Runs every round, then calls `sink(k, range, values)` for output entry `outputs[k]` on each chunk in order.
    func run(outputs: [Int],
             sink: (Int, Range<Int>, UnsafePointer<Float>) throws(ExecutionError) -> Void) throws(ExecutionError) {
        var done = [Bool](repeating: false, count: entries.count)
        while true {
            var observers: [Int] = []
            for e in entries.indices where !done[e] && entries[e].operands.allSatisfy({ done[$0] }) {
                if entries[e].kernel.beginPass() { observers.append(e) } else { done[e] = true }
            }
            if observers.isEmpty { break }
            try sweep(produce: cone(of: observers.flatMap { entries[$0].operands }), observers: Set(observers),
                      outputs: []) { _, _, _ throws(ExecutionError) in }
            for o in observers { try entries[o].kernel.endPass() }
        }
        try sweep(produce: cone(of: outputs), observers: [], outputs: outputs, sink: sink)
    }

    /// The entries `roots` depend on, themselves included (a retained entry already computed needs nothing).
    private func cone(of roots: [Int]) -> Set<Int> {
        var seen = Set<Int>()
        var stack = roots
        while let e = stack.popLast() {
            if seen.insert(e).inserted, !complete.contains(e) { stack.append(contentsOf: entries[e].operands) }
        }
        return seen
    }

    private func sweep(produce: Set<Int>, observers: Set<Int>, outputs: [Int],
                       sink: (Int, Range<Int>, UnsafePointer<Float>) throws(ExecutionError) -> Void) throws(ExecutionError) {
        var lastUse = [Int](repeating: -1, count: entries.count)
        for e in entries.indices where produce.contains(e) || observers.contains(e) {
            if produce.contains(e) { lastUse[e] = max(lastUse[e], e) }
            for o in entries[e].operands { lastUse[o] = max(lastUse[o], e) }
        }
        var sinksAt: [Int: [Int]] = [:]
        for (k, e) in outputs.enumerated() { sinksAt[e, default: []].append(k) }
        var freesAt = [[Int]](repeating: [], count: entries.count)
        for e in entries.indices where lastUse[e] >= 0 { freesAt[lastUse[e]].append(e) }
        for e in entries.indices where produce.contains(e) { entries[e].kernel.beginSweep() }

        var buffers = [AccountedBuffer<Float>?](repeating: nil, count: entries.count)
        var values = [UnsafeMutablePointer<Float>?](repeating: nil, count: entries.count)
        var start = 0
        while start < elementCount {
            let range = start..<min(elementCount, start + chunkElements)
            for e in entries.indices {
                if observers.contains(e) || produce.contains(e) {
                    if complete.contains(e) {
                        values[e] = kept[e]!.pointer + range.lowerBound
                    } else {
                        let operands = ChunkOperands(
                            pointers: entries[e].operands.map { UnsafePointer(values[$0]!) }, range: range)
                        if observers.contains(e) {
                            try entries[e].kernel.observe(operands)
                        } else {
                            let out: UnsafeMutablePointer<Float>
                            if retain.contains(e) {
                                let whole = kept[e] ?? pool.allocateWhole(count: elementCount)
                                kept[e] = whole
                                out = whole.pointer + range.lowerBound
                            } else {
                                let buffer = pool.take()
                                buffers[e] = buffer
                                out = buffer.pointer
                            }
                            try entries[e].kernel.produce(operands, into: out)
                            values[e] = out
                        }
                    }
                    if let out = values[e] { for k in sinksAt[e] ?? [] { try sink(k, range, out) } }
                }
                for dead in freesAt[e] {
                    if let b = buffers[dead] { pool.give(b) }
                    buffers[dead] = nil
                    values[dead] = nil
                }
            }
            start = range.upperBound
        }
        for e in produce where retain.contains(e) { complete.insert(e) }
    }
}

/// Chunk buffers of one capacity, reused across chunks and tensors so that no chunk pays for fresh pages.
final class BufferPool {
    private(set) var capacity = 0
    private let memory: MemoryAccount
    private var free: [AccountedBuffer<Float>] = []

    init(memory: MemoryAccount) { self.memory = memory }

    /// Switches to buffers of `capacity` elements, dropping free buffers of another size.
    func resize(capacity: Int) {
        guard capacity != self.capacity else { return }
        free.removeAll()
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
}
