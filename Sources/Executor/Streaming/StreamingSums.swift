/// f64 sums over a tensor fed chunk by chunk that come out bit for bit the same for any chunking and thread
/// count: each fixed block of `Parallel.blockSize` elements (by global index) folds its elements into its partials
/// in an order fixed by the global indices alone (in index order, or in lanes by index as `PairProducts` and
/// `L1Rescale` do), carrying its partials across chunk boundaries, and the block partials are added in block order
/// at the end.
public final class StreamingSums: @unchecked Sendable {
    public let width: Int
    private let blocks: Int
    private let partials: AccountedBuffer<Double>

    /// Bytes held by the sums of `width` quantities over `elementCount` elements (one partial per block).
    public static func bytes(elementCount: Int, width: Int) -> Int {
        max(1, (elementCount + Parallel.blockSize - 1) / Parallel.blockSize) * width * 8
    }

    /// Sums of `width` quantities over `elementCount` elements.
    public init(elementCount: Int, width: Int, memory: MemoryAccount) {
        self.width = width
        blocks = max(1, (elementCount + Parallel.blockSize - 1) / Parallel.blockSize)
        partials = memory.allocate(Double.self, count: blocks * width)
    }

    /// Folds the elements of `range` (global indices) into the block partials: `term(subrange, acc)` must add
    /// the elements' terms into `acc[0..<width]` in an order that depends only on their global indices (one
    /// element at a time in index order, or each lane's elements in index order).
    public func add(_ range: Range<Int>, parallel: Parallel,
                    _ term: @Sendable (Range<Int>, UnsafeMutablePointer<Double>) -> Void) {
        guard !range.isEmpty else { return }
        let first = range.lowerBound / Parallel.blockSize
        let last = (range.upperBound - 1) / Parallel.blockSize
        let storage = partials.pointer
        let width = self.width
        let shared = SendablePointer(storage)
        @Sendable func run(_ b: Int) {
            let lo = max(range.lowerBound, b * Parallel.blockSize)
            let hi = min(range.upperBound, (b + 1) * Parallel.blockSize)
            term(lo..<hi, shared.pointer + b * width)
        }
        Parallel.forEachIndex(last - first + 1, workers: parallel.threads) { _, i in run(first + i) }
        withExtendedLifetime(storage) {}
    }

    /// The sums: block partials added in block order.
    public func totals() -> [Double] {
        var total = [Double](repeating: 0, count: width)
        for b in 0..<blocks {
            for j in 0..<width { total[j] += partials[b * width + j] }
        }
        return total
    }

    /// Starts over from zero.
    public func reset() {
        partials.pointer.initialize(repeating: 0, count: blocks * width)
    }
}
