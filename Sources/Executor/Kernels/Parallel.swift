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
        guard blocks > 1, threads > 1 else {
            for b in 0..<blocks { body(Parallel.range(of: b, count: count)) }
            return
        }
        let workers = min(threads, blocks)
        WorkerPool.shared.perform(iterations: workers) { w in
            var b = w
            while b < blocks {
                body(Parallel.range(of: b, count: count))
                b += workers
            }
        }
    }

    static func range(of block: Int, count: Int) -> Range<Int> {
        let start = block * blockSize
        return start..<min(count, start + blockSize)
    }
}
