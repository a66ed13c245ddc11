extension Parallel {
    /// Calls `body(worker, part)` for each part of `range` (global indices) that lies in one fixed block of
    /// `blockSize` elements (block `b` is `b·blockSize..<(b+1)·blockSize`), on at most `limit` workers numbered
    /// from 0; each worker takes its blocks in increasing order (the next not yet taken, `forEachIndex`).
    func forEachAlignedBlock(in range: Range<Int>, workers limit: Int = .max,
                             _ body: @Sendable (_ worker: Int, _ part: Range<Int>) -> Void) {
        guard !range.isEmpty else { return }
        let size = Parallel.blockSize
        let first = range.lowerBound / size
        let last = (range.upperBound - 1) / size
        let workers = max(1, min(threads, limit, last - first + 1))
        @Sendable func part(_ b: Int) -> Range<Int> {
            max(range.lowerBound, b * size)..<min(range.upperBound, (b + 1) * size)
        }
        Parallel.forEachIndex(last - first + 1, workers: workers) { w, i in body(w, part(first + i)) }
    }
}
