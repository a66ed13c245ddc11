import IR

/// DELLA's scratch for a tensor of `shape` on `threads` workers, as its kernel allocates it and the planner
/// counts it: `rowWords` 4-byte words for a row along dimension 1 per worker (at most one worker per row: its
/// magnitude keys, later its draws, two rows of positions or ranks and the count slots of `DellaRule.rank`), and for
/// the rescaling pass a byte of keep flags per element of a group of whole dim-0 slices of about one block per
/// thread (at least one slice, at most the tensor).
struct DellaScratch: Sendable {
    /// Words of one worker's row scratch: `3 · rows.length + countSlots(length:)` (`DellaRule.rank`).
    let rowWords: Int
    /// Words of scratch in all: `rowWords` per worker.
    let words: Int
    /// Elements per group of the rescaling pass.
    let groupElements: Int
    /// Keep flags of one group.
    let maskBytes: Int

    init(shape: [Int], threads: Int) {
        let rows = DellaRows(shape: shape)
        let threads = max(1, threads)
        let slice = max(1, rows.sliceElements)
        groupElements = max(1, (1 << 16) * threads / slice) * slice
        rowWords = 3 * rows.length + Self.countSlots(length: rows.length)
        words = min(threads, rows.count) * rowWords
        maskBytes = min(shape.reduce(1, *), groupElements)
    }

    /// Count slots of a row of `length`: the rows whose magnitudes span fewer values are ranked by counting, the
    /// others by radix sort (which needs 1024 slots for its histograms).
    static func countSlots(length: Int) -> Int { max(1024, 4 * length) }

    /// Bytes held, with or without the rescaling pass's flags.
    func bytes(rescale: Bool) -> Int { words * 4 + (rescale ? maskBytes : 0) }
}

/// The rows along dimension 1 of a tensor (a 0-D or 1-D tensor is one row): each slice along dimension 0
/// holds `inner` interleaved rows of `length` elements `inner` apart, so a chunk of whole slices holds whole rows.
struct DellaRows: Sendable {
    let length: Int
    let inner: Int
    /// Rows in the tensor.
    let count: Int

    init(shape: [Int]) {
        let n = shape.reduce(1, *)
        if shape.count < 2 {
            (length, inner, count) = (n, 1, 1)
        } else {
            (length, inner) = (shape[1], shape.dropFirst(2).reduce(1, *))
            count = shape[0] * inner
        }
    }

    /// Elements per slice along dimension 0.
    var sliceElements: Int { length * inner }

    /// The rows of the elements `range`, a range of whole slices along dimension 0.
    func rows(in range: Range<Int>) -> Range<Int> {
        guard sliceElements > 0 else { return 0..<0 }
        return (range.lowerBound / sliceElements * inner)..<(range.upperBound / sliceElements * inner)
    }

    /// The flat index of element 0 of row `row` (rows ordered by slice, then by position in the slice).
    func start(of row: Int) -> Int { (row / inner) * sliceElements + row % inner }
}
