import Dispatch

/// Exact order statistics of |x| over f32 bit patterns by two 16-bit histogram (radix) passes, in O(n)
/// and without sorting: `|x|`'s bits (sign cleared) order like the magnitudes, NaN above +Inf.
struct MagnitudeRank {
    /// A magnitude (as bits) and how many elements are strictly smaller.
    struct Statistic {
        var bits: UInt32
        var countLess: Int
    }

    let values: UnsafePointer<Float>
    let count: Int
    let parallel: Parallel

    @inline(__always)
    static func key(_ x: Float) -> UInt32 { x.bitPattern & 0x7FFF_FFFF }

    /// The magnitude at ascending rank `rank` (0-based, `rank < count`).
    func statistic(atRank rank: Int) -> Statistic {
        let high = histogram { key in Int(key >> 16) }
        let (highBin, belowHigh) = MagnitudeRank.bin(containing: rank, in: high)
        let low = histogram { key in key >> 16 == UInt32(highBin) ? Int(key & 0xFFFF) : nil }
        let (lowBin, belowLow) = MagnitudeRank.bin(containing: rank - belowHigh, in: low)
        return Statistic(bits: UInt32(highBin) << 16 | UInt32(lowBin), countLess: belowHigh + belowLow)
    }

    /// Counts per bucket (65536 buckets) of the elements `bucket` maps to one.
    private func histogram(_ bucket: @escaping @Sendable (UInt32) -> Int?) -> [Int] {
        let workers = max(1, min(parallel.threads, count / Parallel.blockSize))
        let counts = Histograms(workers: workers)
        let pointer = ValuesPointer(base: values)
        let n = count
        let chunk = (n + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let table = counts.table(w)
            for i in (w * chunk)..<min(n, (w + 1) * chunk) {
                if let b = bucket(MagnitudeRank.key(pointer.base[i])) { table[b] += 1 }
            }
        }
        return counts.merged()
    }

    /// The bucket holding rank `rank` and the number of elements in lower buckets.
    private static func bin(containing rank: Int, in counts: [Int]) -> (Int, Int) {
        var below = 0
        for (b, c) in counts.enumerated() {
            if rank < below + c { return (b, below) }
            below += c
        }
        return (counts.count - 1, below - counts[counts.count - 1])
    }
}

/// A read-only element pointer shared with workers.
private struct ValuesPointer: @unchecked Sendable {
    let base: UnsafePointer<Float>
}

/// One 65536-bucket count table per worker.
private final class Histograms: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<Int>
    private let workers: Int
    static let buckets = 1 << 16

    init(workers: Int) {
        self.workers = workers
        storage = .allocate(capacity: workers * Histograms.buckets)
        storage.initialize(repeating: 0, count: workers * Histograms.buckets)
    }

    deinit { storage.deallocate() }

    func table(_ w: Int) -> UnsafeMutablePointer<Int> { storage + w * Histograms.buckets }

    func merged() -> [Int] {
        var total = [Int](repeating: 0, count: Histograms.buckets)
        for w in 0..<workers {
            for b in 0..<Histograms.buckets { total[b] += storage[w * Histograms.buckets + b] }
        }
        return total
    }
}
