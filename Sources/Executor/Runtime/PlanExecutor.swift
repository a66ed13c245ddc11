import Foundation
import IR
import Planner

/// Runs a compiled plan: steps in schedule order, each buffer freed after its last use, each shard
/// written as its tensors complete, then `config.json` and tokenizer files, then the directory moved into place.
public struct PlanExecutor {
    public static let tokenizerFiles = [
        "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
        "added_tokens.json", "vocab.json", "merges.txt", "vocab.txt", "chat_template.jinja",
        "generation_config.json", "chat_template.json",
    ]

    public var plan: Plan
    public var catalog: SafetensorsCatalog
    public var options: ExecutionOptions

    public init(plan: Plan, catalog: SafetensorsCatalog, options: ExecutionOptions) {
        self.plan = plan
        self.catalog = catalog
        self.options = options
    }

    /// The largest number of bytes held in live buffers at once during the last `run` (for tests).
    public private(set) var observedPeakBytes = 0

    public mutating func run(outputDirectory: String) throws(ExecutionError) {
        let out = try OutputDirectory(destination: outputDirectory, overwrite: options.overwrite)
        do {
            try writeModel(into: out)
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }

    private mutating func writeModel(into out: OutputDirectory) throws(ExecutionError) {
        var models: [SafetensorsModel] = []
        for input in plan.graph.models {
            do { models.append(try catalog.model(at: input.path)) } catch { throw .safetensors(error) }
        }
        let graph = plan.graph
        let evaluator = NodeEvaluator(graph: graph, models: models, parallel: Parallel(threads: options.threads))
        let shardOf = plan.schedule.shardOfOutput
        var remaining = plan.schedule.shards.map(\.outputs.count)
        var writers: [Int: SafetensorsWriter] = [:]
        var live: [ValueID: TensorBuffer] = [:]
        var liveBytes = 0
        observedPeakBytes = 0
        for step in plan.schedule.steps {
            let operands = graph[step.value].operands.compactMap { live[$0] }
            let buffer = try evaluator.evaluate(step.value, operands: operands)
            live[step.value] = buffer
            liveBytes += buffer.count * Scheduler.bytesPerLiveElement
            observedPeakBytes = max(observedPeakBytes, liveBytes)
            for o in step.writes {
                let output = graph.outputs[o]
                guard let shardNumber = shardOf[o], let data = live[output.value] else { continue }
                let shard = plan.schedule.shards[shardNumber - 1]
                let writer: SafetensorsWriter
                if let open = writers[shardNumber] {
                    writer = open
                } else {
                    writer = try openWriter(shard, out: out)
                    writers[shardNumber] = writer
                }
                do {
                    try writer.write(output.name, floats: data.buffer)
                    remaining[shardNumber - 1] -= 1
                    if remaining[shardNumber - 1] == 0 {
                        try writer.finish()
                        writers[shardNumber] = nil
                        options.onShardDone?(shard.fileName, shard.outputs.count)
                    }
                } catch {
                    throw .safetensors(error)
                }
            }
            for v in step.frees {
                if let b = live.removeValue(forKey: v) { liveBytes -= b.count * Scheduler.bytesPerLiveElement }
            }
        }
        try writeSideFiles(into: out)
    }

    private func openWriter(_ shard: Shard, out: OutputDirectory) throws(ExecutionError) -> SafetensorsWriter {
        let layout = shard.outputs.map { o -> (name: String, dtype: DType, shape: [Int]) in
            let output = plan.graph.outputs[o]
            let type = plan.graph[output.value].type
            return (output.name, type.dtype, type.shape)
        }
        try out.makeDirectory(for: shard.fileName)
        do {
            return try SafetensorsWriter(path: out.path(shard.fileName), tensors: layout)
        } catch {
            throw .safetensors(error)
        }
    }

    private func writeSideFiles(into out: OutputDirectory) throws(ExecutionError) {
        for target in plan.targets {
            let prefix = target.directory.isEmpty ? "" : target.directory + "/"
            let shards = plan.schedule.shards.filter { shard in
                shard.outputs.contains { plan.graph.outputs[$0].directory == target.directory }
            }
            if shards.count > 1 {
                var weightMap: [String: String] = [:]
                for shard in shards {
                    for o in shard.outputs {
                        weightMap[plan.graph.outputs[o].name] = String(shard.fileName.dropFirst(prefix.count))
                    }
                }
                do {
                    try SafetensorsWriter.writeIndex(directory: out.path(target.directory), weightMap: weightMap,
                                                     totalSize: shards.reduce(0) { $0 + $1.byteCount })
                } catch {
                    throw .safetensors(error)
                }
            }
            if let config = target.config {
                try out.write(prefix + "config.json", config.serialized() + "\n")
            }
            if options.copyTokenizer, let donor = target.tokenizerDonor {
                for name in PlanExecutor.tokenizerFiles {
                    let source = (donor as NSString).appendingPathComponent(name)
                    if FileManager.default.fileExists(atPath: source) { try out.copy(from: source, name: prefix + name) }
                }
            }
        }
    }
}
