/// Which output shards each of `count` workers computes when one merge is split across machines
/// (`mergegraph run --partition I/N`): every worker compiles the same plan and derives the same assignment from it,
/// so workers need no coordination beyond a shared filesystem.
///
/// A shard's cost is the bytes its worker reads (the stored bytes of every input tensor loaded by a group that writes
/// into the shard; a group writing into shards of two workers is computed by both) plus the bytes it writes (the
/// shard's size). Shards are dealt out largest cost first, each to the worker with the least cost so far (the lower
/// number on a tie): the longest-processing-time rule, within 4/3 of the best balance.
public struct Partitioning: Hashable, Sendable {
    /// Workers, at least 1.
    public let count: Int
    /// The shards (indices into `Schedule.shards`, ascending) of each worker, worker 1 first.
    public let shardsOfPartition: [[Int]]
    /// Bytes each worker reads (inputs, stored size), worker 1 first.
    public let bytesRead: [Int]
    /// Bytes each worker writes (its shards), worker 1 first.
    public let bytesWritten: [Int]

    /// The assignment of `schedule`'s shards to `count` (≥ 1) workers for `graph`.
    public init(schedule: Schedule, graph: Graph, count: Int) {
        let count = max(1, count)
        self.count = count
        let shardOf = schedule.shardOfOutput
        var read = [Int](repeating: 0, count: schedule.shards.count)
        // Per shard, the load values its groups read (a set: a group writing two outputs into one shard reads once).
        var loadsOfShard = [Set<ValueID>](repeating: [], count: schedule.shards.count)
        for group in schedule.groups {
            let shards = Set(group.steps.flatMap(\.writes).compactMap { shardOf[$0].map { $0 - 1 } })
            let loads = group.steps.map(\.value).filter { if case .load = graph[$0].op { true } else { false } }
            for s in shards { loadsOfShard[s].formUnion(loads) }
        }
        for s in read.indices { read[s] = loadsOfShard[s].reduce(0) { $0 + graph[$1].type.byteCount } }
        let cost = schedule.shards.indices.map { read[$0] + schedule.shards[$0].byteCount }
        let order = schedule.shards.indices.sorted { cost[$0] != cost[$1] ? cost[$0] > cost[$1] : $0 < $1 }
        var load = [Int](repeating: 0, count: count)
        var shards = [[Int]](repeating: [], count: count)
        var bytesRead = [Int](repeating: 0, count: count), bytesWritten = [Int](repeating: 0, count: count)
        for s in order {
            let worker = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 } ?? 0
            load[worker] += cost[s]
            shards[worker].append(s)
            bytesRead[worker] += read[s]
            bytesWritten[worker] += schedule.shards[s].byteCount
        }
        shardsOfPartition = shards.map { $0.sorted() }
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
    }

    /// The worker (1-based) that computes shard `shard` (an index into `Schedule.shards`).
    public func partition(ofShard shard: Int) -> Int? {
        shardsOfPartition.firstIndex { $0.contains(shard) }.map { $0 + 1 }
    }

    /// Comment lines describing the assignment for `--dump-ir` and `plan`, marking worker `current` (1-based) if
    /// given: per worker its shard files and the bytes it reads and writes.
    public func describe(shards: [Shard], current: Int? = nil) -> [String] {
        var lines = ["partitions: \(count) workers, shards dealt by bytes read + written"]
        for (i, list) in shardsOfPartition.enumerated() {
            let names = list.isEmpty ? "no shards" : list.map { shards[$0].fileName }.joined(separator: ", ")
            let mark = current == i + 1 ? " (this run)" : ""
            lines.append("  partition \(i + 1)/\(count)\(mark): \(names); reads \(formatBytes(bytesRead[i])), "
                         + "writes \(formatBytes(bytesWritten[i]))")
        }
        return lines
    }
}
