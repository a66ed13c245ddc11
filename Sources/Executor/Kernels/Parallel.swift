import Synchronization

/// Runs work over fixed-size blocks of elements on up to `threads` threads. Block boundaries depend only on
/// the element count, never on the thread count, so per-block reductions combine to the same bits.
public struct Parallel: Sendable {
    /// Elements per block.
    public static let blockSize = 1 << 16
    public var threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    /// Calls `body` once per block with the block's element range.
    public func forEachBlock(count: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let blocks = (count + Parallel.blockSize - 1) / Parallel.blockSize
        Parallel.forEachIndex(blocks, workers: threads) { _, b in body(Parallel.range(of: b, count: count)) }
    }

    /// Calls `body(worker, i)` once for every `i` in `0..<count`, on `workers` workers numbered from 0 (the
    /// calling thread and `WorkerPool`'s threads): a free worker takes the next index not yet taken, so each
    /// worker's indices increase, and a worker that starts late (woken from sleep) takes fewer instead of making
    /// the others wait for the share a fixed split would have left it. Results must not depend on which worker
    /// takes an index (scratch indexed by worker is fine; sums kept per worker are not).
    static func forEachIndex(_ count: Int, workers: Int, _ body: (_ worker: Int, _ index: Int) -> Void) {
        guard workers > 1, count > 1 else {
            for i in 0..<count { body(0, i) }
            return
        }
        let next = Atomic<Int>(0)
        WorkerPool.shared.perform(iterations: min(workers, count)) { w in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= count { return }
                body(w, i)
            }
        }
    }

    static func range(of block: Int, count: Int) -> Range<Int> {
        let start = block * blockSize
        return start..<min(count, start + blockSize)
    }
}
