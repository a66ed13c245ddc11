import IR

extension Op {
    /// An upper bound of DELLA's scratch: it ranks rows along dimension 1 (`shape[1]` elements strided by the
    /// later dimensions; a 0-D or 1-D tensor is one row), each worker (at most one per row) in a row of 8-byte
    /// rank slots; its rescaling pass adds a byte of keep flags per element of a group of whole dim-0 slices of
    /// about one block per thread (at least one slice, at most the tensor).
    static func dellaScratchBytes(shape: [Int], threads: Int, rescale: Bool) -> Int {
        let n = shape.reduce(1, *)
        let threads = max(1, threads)
        let rows = shape.count >= 2 ? shape[0] * shape.dropFirst(2).reduce(1, *) : 1
        let length = shape.count >= 2 ? shape[1] : n
        let ranks = min(threads, rows) * length * 8
        guard rescale else { return ranks }
        let slice = shape.count >= 2 ? n / max(1, shape[0]) : n
        return ranks + min(n, max(slice, (1 << 16) * threads))
    }
}
