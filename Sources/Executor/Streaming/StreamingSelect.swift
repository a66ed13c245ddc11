/// Exact order statistics of 32-bit keys over a tensor fed chunk by chunk, in O(n) and without sorting: a first
/// pass counts the keys' high 16 bits (65536 buckets, one table per worker), a second counts the low 16 bits of
/// the keys in the high buckets that hold the wanted ranks. Counts are integers, so the statistics are the same
/// for any chunking and thread count.
///
/// Use: `count` every chunk, `finishFirstPass`, `beginSecondPass(ranks:)`, `count` every chunk again, then
/// `finishSecondPass`. Tables are allocated by the first `count` of a pass and freed when the pass ends.
final class StreamingSelect {
    /// The key at an ascending rank, how many keys are smaller and how many equal it.
    struct Statistic: Equatable, Sendable {
        var key: UInt32
        var countLess: Int
        var countEqual: Int
    }

    static let buckets = 1 << 16
    /// Most ranks one second pass selects.
    static let maxRanks = 3

    private let memory: MemoryAccount
    private let workers: Int
    /// Per-worker tables of the current pass: `workers · slots` tables of 65536 counts.
    private var tables: AccountedBuffer<Int>?
    /// The first pass's tables between the passes, merged into the first.
    private var high: AccountedBuffer<Int>?
    /// The high buckets the second pass counts (nil: the first pass).
    private var slots: [UInt32]?
    /// Tables per worker in the current pass: one in the first, one per wanted rank in the second (whether or
    /// not two ranks share a bucket, so that the memory held does not depend on the data).
    private var tablesPerWorker = 1
    /// The wanted ranks, the slot of the high bucket holding each and the count of keys in lower buckets.
    private var wanted: [(rank: Int, slot: Int, below: Int)] = []

    /// A selection over a tensor of `elementCount` elements counted on up to `threads` workers.
    init(elementCount: Int, threads: Int, memory: MemoryAccount) {
        self.memory = memory
        workers = StreamingSelect.workers(elementCount: elementCount, threads: threads)
    }

    /// Workers counting a tensor of `elementCount` elements: at most one per block.
    static func workers(elementCount: Int, threads: Int) -> Int {
        max(1, min(threads, (elementCount + Parallel.blockSize - 1) / Parallel.blockSize))
    }

    /// Bytes of the tables of a pass counting `slots` buckets' worth (1 in the first pass, the number of wanted
    /// ranks in the second) over `elementCount` elements on `threads` threads.
    static func tableBytes(elementCount: Int, threads: Int, slots: Int) -> Int {
        workers(elementCount: elementCount, threads: threads) * max(1, slots) * buckets * 8
    }

    /// Counts the keys of `range` (global indices) in the current pass.
    func count<Keys: OrderKeys>(_ range: Range<Int>, _ keys: Keys, parallel: Parallel) {
        guard let (base, width) = passTables() else { return }
        if let slots {
            let (b0, b1, b2) = StreamingSelect.wanted(slots)
            parallel.forEachAlignedBlock(in: range, workers: workers) { w, part in
                let t0 = base.pointer + w * width
                keys.forEach(part) { _, key in StreamingSelect.countLow(key, b0, b1, b2, t0) }
            }
        } else {
            countHigh(range, keys, parallel: parallel, tables: base, width: width)
        }
    }

    /// `count` of keys that can be read eight at a time: the second pass tests eight keys against the wanted high
    /// buckets at once, and counts them only when one lies in one (few do).
    func count<Keys: VectorOrderKeys>(_ range: Range<Int>, _ keys: Keys, parallel: Parallel) {
        guard let (base, width) = passTables() else { return }
        if let slots {
            let (b0, b1, b2) = StreamingSelect.wanted(slots)
            let v0 = SIMD8(repeating: b0), v1 = SIMD8(repeating: b1), v2 = SIMD8(repeating: b2)
            parallel.forEachAlignedBlock(in: range, workers: workers) { w, part in
                let t0 = base.pointer + w * width
                keys.forEachLanes(part, lanes: { _, k in
                    let h = k &>> 16
                    if LaneMask.any(LaneMask.equal(h, v0) | LaneMask.equal(h, v1) | LaneMask.equal(h, v2)) {
                        for lane in 0..<8 { StreamingSelect.countLow(k[lane], b0, b1, b2, t0) }
                    }
                }, single: { _, key in StreamingSelect.countLow(key, b0, b1, b2, t0) })
            }
        } else {
            // The keys eight at a time (their masks and shifts in vector lanes), each lane's count as in `countHigh`.
            parallel.forEachAlignedBlock(in: range, workers: workers) { w, part in
                let table = base.pointer + w * width
                keys.forEachLanes(part, lanes: { _, k in
                    let h = k &>> 16
                    for lane in 0..<8 { table[Int(h[lane])] += 1 }
                }, single: { _, key in table[Int(key >> 16)] += 1 })
            }
        }
    }

    /// The current pass's tables (allocated by its first count) and the counts per worker.
    private func passTables() -> (SendablePointer<UnsafeMutablePointer<Int>>, Int)? {
        let width = tablesPerWorker * StreamingSelect.buckets
        if tables == nil { tables = memory.allocate(Int.self, count: workers * width) }
        guard let tables else { return nil }
        return (SendablePointer(tables.pointer), width)
    }

    /// Workers counting this selection's passes (at most one per block of `Parallel.blockSize` elements).
    var workerCount: Int { workers }

    /// Worker `w`'s table of the first pass (65536 counts by the keys' high 16 bits), for a caller that counts part of
    /// the pass its own way (`TieCut`'s windowed count); allocated by the pass's first use. Nil in the second pass.
    func firstPassTable(worker w: Int) -> UnsafeMutablePointer<Int>? {
        guard slots == nil, w < workers, let (base, width) = passTables() else { return nil }
        return base.pointer + w * width
    }

    /// Calls `body` with the first pass's merged counts (65536, after `finishFirstPass`), which it may change: a
    /// caller that counted part of the pass its own way completes them there.
    func withMergedCounts(_ body: (UnsafeMutablePointer<Int>) -> Void) {
        if let high { body(high.pointer) }
    }

    /// Frees the first pass's merged counts (what `statisticsFromFirstPass` does unless asked to keep them).
    func releaseFirstPass() { high = nil }

    /// The first pass's count: the keys' high 16 bits, into worker `w`'s table at `tables + w · width`.
    private func countHigh<Keys: OrderKeys>(_ range: Range<Int>, _ keys: Keys, parallel: Parallel,
                                            tables base: SendablePointer<UnsafeMutablePointer<Int>>, width: Int) {
        parallel.forEachAlignedBlock(in: range, workers: workers) { w, part in
            let table = base.pointer + w * width
            keys.forEach(part) { _, key in table[Int(key >> 16)] += 1 }
        }
    }

    /// The second pass's high buckets, three of them: unused slots hold a bucket no key has (high halves are below
    /// 65536).
    private static func wanted(_ slots: [UInt32]) -> (UInt32, UInt32, UInt32) {
        (slots[0], slots.count > 1 ? slots[1] : .max, slots.count > 2 ? slots[2] : .max)
    }

    /// Counts `key`'s low 16 bits in the table of the wanted bucket (`b0`, `b1`, `b2`) its high bits name, if any:
    /// a worker's tables follow each other from `t0`.
    @inline(__always)
    private static func countLow(_ key: UInt32, _ b0: UInt32, _ b1: UInt32, _ b2: UInt32, _ t0: UnsafeMutablePointer<Int>) {
        let h = key >> 16
        let low = Int(key & 0xFFFF)
        if h == b0 { t0[low] += 1 } else if h == b1 { t0[buckets + low] += 1 } else if h == b2 { t0[2 * buckets + low] += 1 }
    }

    /// Ends the first pass: merges its tables.
    func finishFirstPass() {
        high = tables ?? memory.allocate(Int.self, count: workers * StreamingSelect.buckets)
        tables = nil
        if let high { StreamingSelect.merge(high.pointer, workers: workers, width: StreamingSelect.buckets) }
    }

    /// How many keys the first pass counted in high buckets below `bucket` (keys below `bucket << 16`).
    func countBelow(bucket: Int) -> Int {
        guard let high else { return 0 }
        var total = 0
        for b in 0..<min(bucket, StreamingSelect.buckets) { total += high[b] }
        return total
    }

    /// The statistic of each of `ranks` straight from the first pass, for keys whose low 16 bits are all zero
    /// (magnitudes of bf16 values): what a second pass would find, without it. Frees the counts unless `release` is
    /// false (then `releaseFirstPass` does).
    func statisticsFromFirstPass(ranks: [Int], release: Bool = true) -> [Statistic] {
        defer { if release { high = nil } }
        guard let high else { return [] }
        return ranks.map { rank in
            let (bucket, below) = StreamingSelect.bin(containing: rank, in: high.pointer)
            return Statistic(key: UInt32(bucket) << 16, countLess: below, countEqual: high[bucket])
        }
    }

    /// The statistic of each of `ranks` straight from the first pass, for total-order keys (`OrderKey.total`) of
    /// bf16 values of either sign: a high bucket then holds one key, its low 16 bits all zero for non-negative
    /// values and all one for negative values and NaN (`~bits`, and NaN's `UInt32.max`). What a second pass would
    /// find, without it.
    func statisticsFromFirstPass(bf16TotalRanks ranks: [Int]) -> [Statistic] {
        statisticsFromFirstPass(ranks: ranks).map { s in
            var s = s
            let bucket = s.key >> 16
            if bucket < 0x8000 || bucket == 0xFFFF { s.key |= 0xFFFF }
            return s
        }
    }

    /// Starts the second pass for up to `maxRanks` ascending ranks, each below the element count.
    func beginSecondPass(ranks: [Int]) {
        precondition(ranks.count <= StreamingSelect.maxRanks, "at most \(StreamingSelect.maxRanks) ranks")
        var slots: [UInt32] = []
        wanted = ranks.map { rank in
            let (bucket, below) = high.map { StreamingSelect.bin(containing: rank, in: $0.pointer) } ?? (0, 0)
            let slot = slots.firstIndex(of: UInt32(bucket)) ?? slots.count
            if slot == slots.count { slots.append(UInt32(bucket)) }
            return (rank, slot, below)
        }
        self.slots = slots
        tablesPerWorker = max(1, ranks.count)
        high = nil
    }

    /// Ends the second pass: the statistic of each rank passed to `beginSecondPass`, in the same order.
    func finishSecondPass() -> [Statistic] {
        let slots = self.slots ?? []
        let width = tablesPerWorker * StreamingSelect.buckets
        let merged = tables ?? memory.allocate(Int.self, count: workers * width)
        tables = nil
        StreamingSelect.merge(merged.pointer, workers: workers, width: width)
        return wanted.map { w in
            let table = merged.pointer + w.slot * StreamingSelect.buckets
            let (low, belowLow) = StreamingSelect.bin(containing: w.rank - w.below, in: table)
            return Statistic(key: slots[w.slot] << 16 | UInt32(low), countLess: w.below + belowLow,
                             countEqual: table[low])
        }
    }

    /// Adds the workers' tables of `width` counts into the first one's.
    private static func merge(_ tables: UnsafeMutablePointer<Int>, workers: Int, width: Int) {
        for w in 1..<max(1, workers) {
            let table = tables + w * width
            for b in 0..<width { tables[b] += table[b] }
        }
    }

    /// The bucket of `counts` (65536 of them) holding ascending rank `rank`, and the count in lower buckets.
    private static func bin(containing rank: Int, in counts: UnsafePointer<Int>) -> (Int, Int) {
        var below = 0
        for b in 0..<buckets {
            if rank < below + counts[b] { return (b, below) }
            below += counts[b]
        }
        return (buckets - 1, below - counts[buckets - 1])
    }
}
