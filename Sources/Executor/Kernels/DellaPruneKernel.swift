import Dispatch
import IR

/// DELLA's MAGPRUNE (mergekit's `della_magprune`): along dimension 1 (a 1-D tensor is one row), the element of
/// ascending magnitude rank r among L is kept with probability `density − epsilon + 2·epsilon·r/(L−1)`
/// (equal magnitudes ranked by index); draws are Philox, keyed like `RandomPruneKernel`. A row of one element
/// (where mergekit divides 0 by 0) gets probability `density`.
public enum DellaPruneKernel {
    public static func prune(_ x: TensorBuffer, shape: [Int], density: Double, epsilon: Double, rescale: Bool,
                             seed: UInt64, key: UInt64, dtype: DType, parallel: Parallel) -> TensorBuffer {
        let out = TensorBuffer(count: x.count)
        let rows = RowLayout(shape: shape, count: x.count)
        guard x.count > 0, rows.length > 0 else { return out }
        let rng = Philox4x32(seed: seed)
        let p = SharedPointers(inputs: [UnsafePointer(x.pointer)], output: out.pointer)
        let workers = max(1, min(parallel.threads, rows.count, x.count / 4096 + 1))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var order = [UInt64](repeating: 0, count: rows.length)
            var row = w
            while row < rows.count {
                let start = rows.start(of: row)
                for k in 0..<rows.length {
                    let bits = MagnitudeRank.key(p.inputs[0][start + k * rows.stride])
                    order[k] = UInt64(bits) << 32 | UInt64(k)
                }
                order.sort()
                for (rank, entry) in order.enumerated() {
                    let i = start + Int(entry & 0xFFFF_FFFF) * rows.stride
                    let keep = rng.uniform(stream: key, index: i)
                        < probability(rank: rank, length: rows.length, density: density, epsilon: epsilon)
                    p.output[i] = keep ? p.inputs[0][i] : 0
                }
                row += workers
            }
        }
        RandomPruneKernel.finish(x, out, rescale: rescale, dtype: dtype, parallel: parallel)
        return out
    }

    /// The keep probability of ascending rank `rank` (0-based) in a row of `length`.
    static func probability(rank: Int, length: Int, density: Double, epsilon: Double) -> Double {
        let normalized = length > 1 ? Double(rank) / Double(length - 1) : 0.5
        return density - epsilon + normalized * 2 * epsilon
    }
}

/// The rows along dimension 1 of a tensor: `outer · inner` rows of `length` elements `stride` apart.
struct RowLayout {
    var outer: Int
    var length: Int
    var inner: Int

    init(shape: [Int], count: Int) {
        if shape.count < 2 {
            (outer, length, inner) = (1, count, 1)
        } else {
            (outer, length, inner) = (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
        }
    }

    var count: Int { outer * inner }
    var stride: Int { inner }

    /// The flat index of element 0 of row `row` (rows ordered by outer index, then inner).
    func start(of row: Int) -> Int { (row / inner) * length * inner + row % inner }
}
