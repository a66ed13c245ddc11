
/// DELLA's MAGPRUNE decision (mergekit's `della_magprune`): along dimension 1, the element of ascending
/// magnitude rank r among L is kept with probability `density − epsilon + 2·epsilon·r/(L−1)` (equal magnitudes
/// ranked by index); draws are Philox for (seed, stream key, element index), like DARE's. A row of one element
/// (where mergekit divides 0 by 0) gets probability `density`.
struct DellaRule: Sendable {
    let rows: DellaRows
    let rng: Philox4x32
    let key: UInt64
    let density: Double
    let epsilon: Double

    /// Ranks the elements of row `row` of `x` (global indices) by magnitude in `order` (`rows.length`
    /// entries of scratch) and calls `body(i, keep)` for each of them, in ascending rank order.
    @inline(__always)
    func decide(row: Int, x: UnsafePointer<Float>, order: UnsafeMutablePointer<UInt64>, _ body: (Int, Bool) -> Void) {
        let start = rows.start(of: row), stride = rows.inner, length = rows.length
        for k in 0..<length {
            order[k] = UInt64(x[start + k * stride].bitPattern & 0x7FFF_FFFF) << 32 | UInt64(k)
        }
        var ranked = UnsafeMutableBufferPointer(start: order, count: length)
        ranked.sort()
        for rank in 0..<length {
            let i = start + Int(order[rank] & 0xFFFF_FFFF) * stride
            let p = Self.probability(rank: rank, length: length, density: density, epsilon: epsilon)
            body(i, rng.uniform(stream: key, index: i) < p)
        }
    }

    /// The keep probability of ascending rank `rank` (0-based) in a row of `length`.
    @inline(__always)
    static func probability(rank: Int, length: Int, density: Double, epsilon: Double) -> Double {
        let normalized = length > 1 ? Double(rank) / Double(length - 1) : 0.5
        return density - epsilon + normalized * 2 * epsilon
    }
}
