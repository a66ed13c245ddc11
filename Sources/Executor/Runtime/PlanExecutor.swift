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

    /// Counts the memory the run holds (chunk buffers, kernel state, input staging, writer buffers).
    public let memory = MemoryAccount()

    public func run(outputDirectory: String) throws(ExecutionError) {
        let out = try OutputDirectory(destination: outputDirectory, overwrite: options.overwrite)
        do {
            try writeModel(into: out)
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }

    private func writeModel(into out: OutputDirectory) throws(ExecutionError) {
        var models: [SafetensorsModel] = []
        for input in plan.graph.models {
            do { models.append(try catalog.model(at: input.path)) } catch { throw .safetensors(error) }
        }
        let graph = plan.graph
        let threads = plan.schedule.threads
        let parallel = Parallel(threads: threads)
        let shardOf = plan.schedule.shardOfOutput
        var writers: [Int: SafetensorsWriter] = [:]
        var progress = RunProgress(tensorCount: graph.outputs.count,
                                byteCount: plan.schedule.shards.reduce(0) { $0 + $1.byteCount })
        for group in plan.schedule.groups {
            for s in group.opensShards { writers[s + 1] = try openWriter(plan.schedule.shards[s], out: out) }
            var entries: [ChunkRunner.Entry] = []
            var entryOf: [ValueID: Int] = [:]
            var outputs: [Int] = []
            var outputEntries: [Int] = []
            let staging = InputStaging(memory: memory)
            for step in group.steps {
                let node = graph[step.value]
                let operandTypes = node.operands.map { graph[$0].type }
                let context = KernelContext(shape: node.type.shape, dtype: node.type.dtype, parallel: parallel,
                                            memory: memory, operandDTypes: operandTypes.map(\.dtype))
                let kernel: ChunkKernel
                if case .load(let m, let name) = node.op {
                    kernel = try LoadChunkKernel(model: models[m], tensor: name, staging: staging, context: context)
                } else if let make = KernelFactory.declaration(for: node.op, result: node.type, operands: operandTypes,
                                                               threads: threads).make {
                    kernel = make(context)
                } else {
                    throw .planMismatch("\(step.value) = \(node.op.mnemonic) has no kernel")
                }
                entryOf[step.value] = entries.count
                entries.append(ChunkRunner.Entry(kernel: kernel, operands: node.operands.map { entryOf[$0]! }, frees: []))
                for o in step.writes {
                    outputs.append(o)
                    outputEntries.append(entries.count - 1)
                }
            }
            for (i, step) in group.steps.enumerated() { entries[i].frees = step.frees.compactMap { entryOf[$0] } }
            let runner = ChunkRunner(entries: entries, sweeps: group.sweeps, elementCount: group.elementCount,
                                     chunkElements: group.chunkElements, memory: memory,
                                     retain: Set(group.retained.compactMap { entryOf[$0] }))
            do {
                try runner.run(outputs: outputEntries) { k, range, values throws(ExecutionError) in
                    let o = outputs[k]
                    guard let shardNumber = shardOf[o], let writer = writers[shardNumber] else {
                        throw .planMismatch("output \(o) has no open shard")
                    }
                    let output = graph.outputs[o]
                    try Self.write(writer, output.name, range.lowerBound, UnsafeBufferPointer(start: values, count: range.count))
                    progress.bytesWritten += range.count * graph[output.value].type.dtype.byteSize
                    options.onProgress?(progress)
                }
            } catch {
                guard case .undefinedMerge(_, let op, let reason) = error else { throw error }
                throw .undefinedMerge(value: "tensor \"\(graph.outputs[outputs[0]].name)\"", op: op, reason)
            }
            progress.tensorsDone += outputs.count
            for s in group.closesShards {
                guard let writer = writers.removeValue(forKey: s + 1) else { continue }
                do { try writer.finish() } catch { throw .safetensors(error) }
                memory.release(Scheduler.writerBytes)
                let shard = plan.schedule.shards[s]
                options.onShardDone?(shard.fileName, shard.outputs.count)
            }
            options.onProgress?(progress)
        }
        try writeSideFiles(into: out)
    }

    private static func write(_ writer: SafetensorsWriter, _ name: String, _ offset: Int,
                              _ values: UnsafeBufferPointer<Float>) throws(ExecutionError) {
        do { try writer.write(name, elementOffset: offset, floats: values) } catch { throw .safetensors(error) }
    }

    private func openWriter(_ shard: Shard, out: OutputDirectory) throws(ExecutionError) -> SafetensorsWriter {
        let layout = shard.outputs.map { o -> (name: String, dtype: DType, shape: [Int]) in
            let output = plan.graph.outputs[o]
            let type = plan.graph[output.value].type
            return (output.name, type.dtype, type.shape)
        }
        try out.makeDirectory(for: shard.fileName)
        memory.charge(Scheduler.writerBytes)
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
