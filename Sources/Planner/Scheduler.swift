import Checkpoint
import IR

/// Orders a graph for chunked execution: splits outputs into shards as mergekit does, groups the outputs that
/// share work, orders each group's values so few chunk buffers are alive at once, frees every buffer after its
/// last use, and picks each group's chunk size so that the run fits the memory budget.
public enum Scheduler {
    /// Bytes of one f32 chunk element.
    public static let bytesPerBufferElement = 4
    /// Bytes each open output writer holds: the writer's own constant, `SafetensorsWriter.byteCount`.
    public static let writerBytes = SafetensorsWriter.byteCount

    /// How the scheduler sizes chunks.
    public struct Limits: Sendable {
        /// Bytes the executor may hold (chunk buffers, kernel state, input staging, writer buffers).
        public var budgetBytes: Int
        /// Largest chunk in elements (at least one row is always taken): 2^18 f32 elements (1 MiB) keep a
        /// chunk's working set in the caches; bigger chunks run slower.
        public var maxChunkElements: Int
        /// Worker threads (per-thread kernel state grows with them).
        public var threads: Int
        /// Keep the operands of statistics passes whole when the budget allows, instead of recomputing them.
        public var retainAcrossPasses: Bool

        public init(budgetBytes: Int = Int.max / 4, maxChunkElements: Int = 1 << 18, threads: Int = 1,
                    retainAcrossPasses: Bool = true) {
            self.budgetBytes = budgetBytes
            self.maxChunkElements = maxChunkElements
            self.threads = threads
            self.retainAcrossPasses = retainAcrossPasses
        }
    }

    public static func schedule(_ graph: Graph, maxShardBytes: Int,
                                limits: Limits = Limits()) throws(PlanError) -> Schedule {
        let shards = assignShards(graph, maxShardBytes: maxShardBytes)
        let directories = Set(graph.outputs.map(\.directory)).count
        let fixed = min(directories, shards.count) * writerBytes
        var groups: [ChunkGroup] = []
        for members in outputGroups(graph, order: shards.flatMap(\.outputs)) {
            var group = plan(members, graph: graph, threads: limits.threads)
            let room = limits.budgetBytes - fixed
            let smallest = group.bytes(rows: 1)
            guard smallest <= room else {
                throw .budgetTooSmall(budget: limits.budgetBytes, smallest: smallest + fixed,
                                      tensor: graph.outputs[members[0]].name)
            }
            group.retained = limits.retainAcrossPasses ? retainable(group, graph: graph) : []
            if group.retained.isEmpty || group.bytes(rows: 1) > room { group.retained = [] }
            let whole = group.stateBytes + group.retained.count * group.elementCount * 4
            let perRow = max(1, group.bytes(rows: 1) - whole)
            let fit = (room - whole) / perRow
            let cap = max(1, limits.maxChunkElements / max(1, group.rowElements))
            group.chunkRows = max(1, min(group.rowCount, fit, cap))
            groups.append(group)
        }
        return Schedule(groups: groups, shards: shards, budgetBytes: limits.budgetBytes, fixedBytes: fixed)
    }

    /// The operands of statistics passes that are themselves computed through statistics passes (a stage's
    /// result read by the next stage's slerp, say): kept whole rather than recomputed on every pass. Cheaper
    /// operands (inputs, task vectors) are recomputed chunk by chunk, which costs less than writing and
    /// reading back whole tensors.
    static func retainable(_ group: ChunkGroup, graph: Graph) -> [ValueID] {
        var passesInCone: [ValueID: Bool] = [:]
        func hasPasses(_ v: ValueID) -> Bool {
            if let known = passesInCone[v] { return known }
            let result = graph[v].op.takesStatisticsPasses || graph[v].operands.contains(where: hasPasses)
            passesInCone[v] = result
            return result
        }
        var values = Set<ValueID>()
        for step in group.steps where graph[step.value].op.takesStatisticsPasses {
            values.formUnion(graph[step.value].operands.filter(hasPasses))
        }
        return values.sorted()
    }

    /// Outputs in write order, grouped (by first appearance) when they share a node and a shape.
    static func outputGroups(_ graph: Graph, order: [Int]) -> [[Int]] {
        var groups: [[Int]] = []
        var groupOfNode: [ValueID: Int] = [:]
        for o in order {
            let output = graph.outputs[o]
            let shape = graph[output.value].type.shape
            let cone = self.cone(of: output.value, graph: graph)
            // The earliest group sharing a node (a Set's order is not stable) whose shape matches.
            let target = cone.compactMap { groupOfNode[$0] }
                .filter { graph[graph.outputs[groups[$0][0]].value].type.shape == shape }.min()
            let g: Int
            if let target {
                g = target
                groups[g].append(o)
            } else {
                g = groups.count
                groups.append([o])
            }
            for v in cone where groupOfNode[v] == nil { groupOfNode[v] = g }
        }
        return groups
    }

    private static func cone(of root: ValueID, graph: Graph) -> Set<ValueID> {
        var seen = Set<ValueID>()
        var stack = [root]
        while let v = stack.popLast() {
            if seen.insert(v).inserted { stack.append(contentsOf: graph[v].operands) }
        }
        return seen
    }

    /// Steps, frees and memory of one group (chunk rows still 1).
    static func plan(_ outputs: [Int], graph: Graph, threads: Int) -> ChunkGroup {
        var steps: [ScheduleStep] = []
        var stepOf: [ValueID: Int] = [:]
        for o in outputs {
            visit(graph.outputs[o].value, graph: graph, steps: &steps, stepOf: &stepOf)
            steps[stepOf[graph.outputs[o].value]!].writes.append(o)
        }
        var lastUse: [ValueID: Int] = [:]
        for (i, step) in steps.enumerated() {
            lastUse[step.value] = max(lastUse[step.value] ?? i, i)
            for operand in graph[step.value].operands { lastUse[operand] = i }
        }
        for (v, i) in lastUse.sorted(by: { $0.key < $1.key }) { steps[i].frees.append(v) }
        var live = 0
        var peak = 0
        var state = 0
        var inputBytes = 0
        for i in steps.indices {
            steps[i].frees.sort()
            live += 1
            peak = max(peak, live)
            live -= steps[i].frees.count
            let node = graph[steps[i].value]
            if case .load = node.op { inputBytes = max(inputBytes, node.type.dtype.byteSize) }
            state += node.op.streamingStateBytes(shape: node.type.shape, operands: node.operands.count, threads: threads)
        }
        let shape = graph[graph.outputs[outputs[0]].value].type.shape
        let count = shape.reduce(1, *)
        let rowElements = shape.count >= 2 ? count / max(1, shape[0]) : count
        return ChunkGroup(steps: steps, shape: shape, rowElements: rowElements, chunkRows: 1, liveBuffers: peak,
                          stateBytes: state, inputBytesPerElement: inputBytes)
    }

    /// Depth-first from `root`; among a node's operands, the one that needs the most buffers to compute goes
    /// first (Sethi–Ullman order), so fewer finished operands wait while another is computed.
    private static func visit(_ root: ValueID, graph: Graph, steps: inout [ScheduleStep], stepOf: inout [ValueID: Int]) {
        var need: [ValueID: Int] = [:]
        var stack: [(ValueID, Bool)] = [(root, false)]
        while let (v, expanded) = stack.popLast() {
            if stepOf[v] != nil { continue }
            if expanded {
                stepOf[v] = steps.count
                steps.append(ScheduleStep(value: v, writes: [], frees: []))
            } else {
                stack.append((v, true))
                let pending = graph[v].operands.filter { stepOf[$0] == nil }
                let ordered = pending.enumerated().sorted { a, b in
                    let (na, nb) = (buffersNeeded(a.element, graph, stepOf, &need), buffersNeeded(b.element, graph, stepOf, &need))
                    return na != nb ? na > nb : a.offset < b.offset
                }.map(\.element)
                for operand in ordered.reversed() { stack.append((operand, false)) }
            }
        }
    }

    /// Buffers alive at once while `v` is computed from scratch, its operands in Sethi–Ullman order
    /// (values already computed cost nothing more).
    private static func buffersNeeded(_ v: ValueID, _ graph: Graph, _ stepOf: [ValueID: Int],
                                      _ memo: inout [ValueID: Int]) -> Int {
        if let known = memo[v] { return known }
        var order: [(ValueID, Bool)] = [(v, false)]
        while let (x, expanded) = order.popLast() {
            if memo[x] != nil { continue }
            let operands = graph[x].operands.filter { stepOf[$0] == nil }
            if expanded {
                let needs = operands.map { memo[$0] ?? 1 }.sorted(by: >)
                memo[x] = max(needs.enumerated().map { $0.element + $0.offset }.max() ?? 0, operands.count + 1)
            } else {
                order.append((x, true))
                for o in operands where memo[o] == nil { order.append((o, false)) }
            }
        }
        return memo[v] ?? 1
    }

    /// mergekit's rule, per output directory: start a new shard when adding the next tensor would pass the limit.
    static func assignShards(_ graph: Graph, maxShardBytes: Int) -> [Shard] {
        var directories: [String] = []
        for output in graph.outputs where !directories.contains(output.directory) { directories.append(output.directory) }
        return directories.flatMap { directory in
            let members = graph.outputs.indices.filter { graph.outputs[$0].directory == directory }
            return assignShards(graph, outputs: members, maxShardBytes: maxShardBytes).map { shard in
                var shard = shard
                if !directory.isEmpty { shard.fileName = "\(directory)/\(shard.fileName)" }
                return shard
            }
        }
    }

    private static func assignShards(_ graph: Graph, outputs: [Int], maxShardBytes: Int) -> [Shard] {
        var groups: [(outputs: [Int], bytes: Int)] = []
        for i in outputs {
            let size = graph[graph.outputs[i].value].type.byteCount
            if let last = groups.last, !last.outputs.isEmpty, maxShardBytes > 0, last.bytes + size > maxShardBytes {
                groups.append(([], 0))
            }
            if groups.isEmpty { groups.append(([], 0)) }
            groups[groups.count - 1].outputs.append(i)
            groups[groups.count - 1].bytes += size
        }
        return groups.enumerated().map { i, g in
            Shard(fileName: ShardNaming.fileName(shard: i + 1, of: groups.count), outputs: g.outputs, byteCount: g.bytes)
        }
    }
}
