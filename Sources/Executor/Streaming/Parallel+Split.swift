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
    /// waits while some task still runs that may add one. With `bounded`, at most `threads` tasks are open at once
    /// (a task is open from its call until its continuation, if any, returns), so that tasks holding memory from
    /// their call to their continuation's end hold it for at most `threads` tasks: a free worker runs a
    /// continuation rather than open another task. On one worker each continuation runs right after its call.
    /// Only for tasks independent of each other.
    func forEachTask(count: Int, bounded: Bool = false, _ body: @Sendable (Int) -> PassContinuation?) {
        let workers = min(threads, count)
        guard workers > 1 else {
            for i in 0..<count { body(i)?.run() }
            return
        }
        let next = Atomic<Int>(0)
        let unfinished = Atomic<Int>(count)  // tasks whose continuation may still be added
        let open = Atomic<Int>(0)  // tasks called whose continuation has not returned
        let queue = Mutex<[PassContinuation]>([])
        WorkerPool.shared.perform(iterations: workers) { _ in
            while true {
                if !bounded || open.add(1, ordering: .sequentiallyConsistent).newValue <= workers {
                    let i = next.add(1, ordering: .relaxed).oldValue
                    if i < count {
                        if let continuation = body(i) {
                            queue.withLock { $0.append(continuation) }
                        } else if bounded {
                            open.subtract(1, ordering: .sequentiallyConsistent)
                        }
                        unfinished.subtract(1, ordering: .sequentiallyConsistent)
                        continue
                    }
                    if bounded { open.subtract(1, ordering: .sequentiallyConsistent) }
                } else {
                    open.subtract(1, ordering: .sequentiallyConsistent)
                }
                if let taken = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                    taken.run()
                    if bounded { open.subtract(1, ordering: .sequentiallyConsistent) }
                } else if unfinished.load(ordering: .sequentiallyConsistent) == 0 {
                    // Every task has ended; a continuation added just before the count fell is still taken.
                    guard let last = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return }
                    last.run()
                    if bounded { open.subtract(1, ordering: .sequentiallyConsistent) }
                } else {
                    sched_yield()
                }
            }
        }
    }
}
