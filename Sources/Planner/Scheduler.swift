import IR

/// Orders a graph output by output (so shards complete one after another), frees every buffer after its
/// last use, splits outputs into shards as mergekit does, and predicts the peak of live buffers.
public enum Scheduler {
    /// Bytes the executor holds per element of a live value (it computes in f32).
    public static let bytesPerLiveElement = 4

    public static func schedule(_ graph: Graph, maxShardBytes: Int) -> Schedule {
        let shards = assignShards(graph, maxShardBytes: maxShardBytes)
        var steps: [ScheduleStep] = []
        var stepOf: [ValueID: Int] = [:]
        for shard in shards {
            for o in shard.outputs {
                visit(graph.outputs[o].value, graph: graph, steps: &steps, stepOf: &stepOf)
                steps[steps.count - 1].writes.append(o)
            }
        }
        var lastUse: [ValueID: Int] = [:]
        for (i, step) in steps.enumerated() {
            lastUse[step.value] = i
            for operand in graph[step.value].operands { lastUse[operand] = i }
            for o in step.writes { lastUse[graph.outputs[o].value] = i }
        }
        var live = 0
        var peak = 0
        for (v, i) in lastUse.sorted(by: { $0.key < $1.key }) { steps[i].frees.append(v) }
        for i in steps.indices {
            steps[i].frees.sort()
            live += graph[steps[i].value].type.elementCount * bytesPerLiveElement
            peak = max(peak, live)
            for v in steps[i].frees { live -= graph[v].type.elementCount * bytesPerLiveElement }
        }
        return Schedule(steps: steps, shards: shards, predictedPeakBytes: peak)
    }

    private static func visit(_ root: ValueID, graph: Graph, steps: inout [ScheduleStep], stepOf: inout [ValueID: Int]) {
        var stack: [(ValueID, Bool)] = [(root, false)]
        while let (v, expanded) = stack.popLast() {
            if stepOf[v] != nil { continue }
            if expanded {
                stepOf[v] = steps.count
                steps.append(ScheduleStep(value: v, writes: [], frees: []))
            } else {
                stack.append((v, true))
                for operand in graph[v].operands.reversed() where stepOf[operand] == nil {
                    stack.append((operand, false))
                }
            }
        }
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
        let n = groups.count
        return groups.enumerated().map { i, g in
            let name = n == 1 ? "model.safetensors"
                : "model-\(pad5(i + 1))-of-\(pad5(n)).safetensors"
            return Shard(fileName: name, outputs: g.outputs, byteCount: g.bytes)
        }
    }

    private static func pad5(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }
}
