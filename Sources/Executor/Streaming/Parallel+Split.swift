import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension Parallel {
    /// Calls `body` with up to `threads` contiguous parts of `range` (rows or columns of a chunk), in parallel.
    /// Only for work whose per-item results do not depend on how the items are split.
    public func forEachPart(of range: Range<Int>, _ body: @Sendable (Range<Int>) -> Void) {
        let workers = min(threads, range.count)
        guard workers > 1 else {
            if !range.isEmpty { body(range) }
            return
        }
        let start = range.lowerBound, count = range.count
        WorkerPool.shared.perform(iterations: workers) { w in
            body((start + w * count / workers)..<(start + (w + 1) * count / workers))
        }
    }

    /// Calls `body(worker, row)` for every row of `rows` on `workers` workers numbered from 0, each taking the
    /// next row not yet taken (`forEachIndex`), so each may use scratch of its own.
    func forEachRow(in rows: Range<Int>, workers: Int, _ body: @Sendable (_ worker: Int, _ row: Int) -> Void) {
        Parallel.forEachIndex(rows.count, workers: workers) { w, i in body(w, rows.lowerBound + i) }
    }

    /// Calls `body(i)` once for every `i` in `0..<count`, and each continuation a call returns, on up to `threads`
    /// workers: a free worker takes the next task not yet taken, else the oldest continuation not yet taken, and
    /// waits while some task still runs that may add one. Only for tasks independent of each other.
    func forEachTask(count: Int, _ body: @Sendable (Int) -> PassContinuation?) {
        let workers = min(threads, count)
        guard workers > 1 else {
            let continuations = (0..<count).compactMap { body($0) }
            for continuation in continuations { continuation.run() }
            return
        }
        let next = Atomic<Int>(0)
        let unfinished = Atomic<Int>(count)  // tasks whose continuation may still be added
        let queue = Mutex<[PassContinuation]>([])
        WorkerPool.shared.perform(iterations: workers) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i < count {
                    if let continuation = body(i) { queue.withLock { $0.append(continuation) } }
                    unfinished.subtract(1, ordering: .sequentiallyConsistent)
                    continue
                }
                if let taken = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                    taken.run()
                } else if unfinished.load(ordering: .sequentiallyConsistent) == 0 {
                    // Every task has ended; a continuation added just before the count fell is still taken.
                    guard let last = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return }
                    last.run()
                } else {
                    sched_yield()
                }
            }
        }
    }
}
