import Dispatch

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
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            body((start + w * count / workers)..<(start + (w + 1) * count / workers))
        }
    }
}
