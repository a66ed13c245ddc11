import Checkpoint
import Foundation
import IR

/// Runs a compiled plan: steps in schedule order, each buffer freed after its last use, each shard
/// written as its tensors complete, then `config.json` and tokenizer files, then the directory moved into place.
public struct PlanExecutor {
    /// The tokenizer and generation files copied from the donor model when present.
    public static let tokenizerFiles = TokenizerFiles.copiedNames

    /// The compiled merge to run.
    public var plan: Plan
    /// Opens the plan's input models (`ModelInput.path`, resolved paths) for reading, whatever their format.
    public var catalog: LocalCheckpointCatalog
    /// Writes the output shards and index.
    public var output: any CheckpointWriter
    /// Threads, overwrite, tokenizer copying and progress callbacks.
    public var options: ExecutionOptions

    /// An executor of `plan` reading inputs through `catalog` (the one the plan was compiled with, so each
    /// directory is opened once) and writing with `output` (safetensors by default).
    public init(plan: Plan, catalog: LocalCheckpointCatalog, options: ExecutionOptions,
                output: any CheckpointWriter = SafetensorsCheckpointWriter()) {
        self.plan = plan
        self.catalog = catalog
        self.output = output
        self.options = options
    }

    /// Counts the memory the run holds (chunk buffers, kernel state, input staging, writer buffers).
    public let memory = MemoryAccount()

    /// Writes the merged model(s) into `outputDirectory`: built in a hidden sibling directory and moved into place at
    /// the end, so a failed run leaves nothing that looks like a model.
    /// - Throws: `ExecutionError` naming the file, directory or tensor: an unreadable input, a write failure, an
    ///   existing non-empty output without `overwrite`, a merge undefined for its inputs.
    public func run(outputDirectory: String) throws(ExecutionError) {
        let protected = plan.inputDirectories.map { ProtectedPath($0, kind: .inputModel) } + options.protectedPaths
        let out = try OutputDirectory(destination: outputDirectory, overwrite: options.overwrite, protected: protected)
        do {
            try writeModel(into: out)
            try out.commit()
        } catch {
            out.discard()
            throw error
        }
    }

    private func writeModel(into out: OutputDirectory) throws(ExecutionError) {
        var models: [any CheckpointReader] = []
        for input in plan.graph.models {
            do { models.append(try catalog.reader(at: input.path)) } catch { throw .checkpoint(error) }
        }
        let graph = plan.graph
        if let shard = plan.schedule.groups.first(where: { $0.writerBytes > 0 }),
           output.bytesPerOpenShard > shard.writerBytes {
            throw .planMismatch("the output writer holds \(output.bytesPerOpenShard) bytes per open shard, more than "
                                + "the plan was made for; compile with this writer's StreamingCostModel(output:)")
        }
        let threads = plan.schedule.threads
        let parallel = Parallel(threads: threads)
        let shardOf = plan.schedule.shardOfOutput
        var writers: [Int: any CheckpointShardWriter] = [:]
        var progress = RunProgress(tensorCount: graph.outputs.count,
                                byteCount: plan.schedule.shards.reduce(0) { $0 + $1.byteCount })
        for group in plan.schedule.groups {
            for s in group.opensShards { writers[s + 1] = try openWriter(plan.schedule.shards[s], out: out) }
            var entries: [ChunkRunner.Entry] = []
            var entryOf: [ValueID: Int] = [:]
            var outputs: [Int] = []
            var outputEntries: [Int] = []
            // For the non-finite check: the float loads of the group and, per entry, the loads it is computed from.
            var loads: [Int: any InputReadingKernel] = [:]
            var feedingLoads: [Set<Int>] = []
            let staging = InputStaging(memory: memory)
            for step in group.steps {
                let node = graph[step.value]
                let operandTypes = node.operands.map { graph[$0].type }
                let context = KernelContext(shape: node.type.shape, dtype: node.type.dtype, parallel: parallel,
                                            memory: memory, operandDTypes: operandTypes.map(\.dtype))
                let kernel: ChunkKernel
                if case .load(let m, let name) = node.op, !node.type.dtype.isFloatingPoint {
                    kernel = try RawLoadChunkKernel(reader: models[m], tensor: name, context: context)
                } else if case .load(let m, let name) = node.op {
                    let load = try LoadChunkKernel(reader: models[m], tensor: name, staging: staging, context: context,
                                                   checksFinite: !options.allowNonFinite)
                    loads[entries.count] = load
                    kernel = load
                } else if case .vocabularyGather(let gather) = node.op {
                    let read = try VocabularyGatherChunkKernel(gather: gather, models: models, staging: staging,
                                                               context: context, checksFinite: !options.allowNonFinite)
                    loads[entries.count] = read
                    kernel = read
                } else if let make = KernelFactory.declaration(for: node.op, result: node.type, operands: operandTypes,
                                                               threads: threads).make {
                    kernel = make(context)
                } else {
                    throw .planMismatch("\(step.value) = \(node.op.mnemonic) has no kernel")
                }
                let sources = node.operands.reduce(into: loads[entries.count] == nil ? Set<Int>() : [entries.count]) {
                    $0.formUnion(feedingLoads[entryOf[$1]!])
                }
                feedingLoads.append(sources)
                entryOf[step.value] = entries.count
                entries.append(ChunkRunner.Entry(kernel: kernel, operands: node.operands.map { entryOf[$0]! }, frees: []))
                for o in step.writes {
                    outputs.append(o)
                    outputEntries.append(entries.count - 1)
                }
            }
            for (i, step) in group.steps.enumerated() { entries[i].frees = step.frees.compactMap { entryOf[$0] } }
            let runner = ChunkRunner(entries: entries, sweeps: group.sweeps, elementCount: group.elementCount,
                                     chunkElements: group.chunkElements, bufferBytesPerElement: group.bufferBytesPerElement,
                                     memory: memory,
                                     retain: Set(group.retained.compactMap { entryOf[$0] }))
            var nonFiniteOutputs = Set<Int>()
            let checksFinite = !options.allowNonFinite
            do {
                try runner.run(outputs: outputEntries) { k, range, values throws(ExecutionError) in
                    let o = outputs[k]
                    guard let shardNumber = shardOf[o], let writer = writers[shardNumber] else {
                        throw .planMismatch("output \(o) has no open shard")
                    }
                    let output = graph.outputs[o]
                    let dtype = graph[output.value].type.dtype
                    if dtype.isFloatingPoint {
                        if checksFinite, !nonFiniteOutputs.contains(k),
                           FiniteCheck.exceeds(values, count: range.count, limitBits: FiniteCheck.limitBits(for: dtype)) {
                            nonFiniteOutputs.insert(k)
                        }
                        try Self.write(writer, output.name, range.lowerBound, UnsafeBufferPointer(start: values, count: range.count))
                    } else {
                        try Self.write(writer, output.name, range.lowerBound,
                                       UnsafeRawBufferPointer(start: values, count: range.count * dtype.byteSize))
                    }
                    progress.bytesWritten += range.count * graph[output.value].type.dtype.byteSize
                    options.onProgress?(progress)
                }
            } catch {
                guard case .undefinedMerge(_, let op, let reason) = error else { throw error }
                throw .undefinedMerge(value: "tensor \"\(graph.outputs[outputs[0]].name)\"", op: op, reason)
            }
            // A non-finite value is an error unless an input of that output had one (inputs may hold Inf/NaN on
            // purpose, e.g. attention masks); all chunks have been read by now, statistics sweeps included.
            for k in nonFiniteOutputs.sorted()
            where !feedingLoads[outputEntries[k]].contains(where: { loads[$0]!.sawNonFinite }) {
                throw .nonFinite(tensor: graph.outputs[outputs[k]].name)
            }
            progress.tensorsDone += outputs.count
            for s in group.closesShards {
                guard let writer = writers.removeValue(forKey: s + 1) else { continue }
                do { try writer.finish() } catch { throw .checkpoint(error) }
                memory.release(output.bytesPerOpenShard)
                let shard = plan.schedule.shards[s]
                options.onShardDone?(shard.fileName, shard.outputs.count)
            }
            options.onProgress?(progress)
        }
        try writeSideFiles(into: out)
    }

    private static func write(_ writer: any CheckpointShardWriter, _ name: String, _ offset: Int,
                              _ values: UnsafeBufferPointer<Float>) throws(ExecutionError) {
        do { try writer.write(name, elementOffset: offset, floats: values) } catch { throw .checkpoint(error) }
    }

    /// Writes the bytes of an integer or BOOL tensor's elements unchanged.
    private static func write(_ writer: any CheckpointShardWriter, _ name: String, _ offset: Int,
                              _ bytes: UnsafeRawBufferPointer) throws(ExecutionError) {
        do { try writer.write(name, elementOffset: offset, bytes: bytes) } catch { throw .checkpoint(error) }
    }

    private func openWriter(_ shard: Shard, out: OutputDirectory) throws(ExecutionError) -> any CheckpointShardWriter {
        let layout = shard.outputs.map { o -> (name: String, dtype: DType, shape: [Int]) in
            let output = plan.graph.outputs[o]
            let type = plan.graph[output.value].type
            return (output.name, type.dtype, type.shape)
        }
        try out.makeDirectory(for: shard.fileName)
        memory.charge(output.bytesPerOpenShard)
        do {
            return try output.openShard(path: out.path(shard.fileName), tensors: layout)
        } catch {
            throw .checkpoint(error)
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
                    try output.writeIndex(directory: out.path(target.directory), weightMap: weightMap,
                                          totalSize: shards.reduce(0) { $0 + $1.byteCount })
                } catch {
                    throw .checkpoint(error)
                }
            }
            if let config = target.config {
                try out.write(prefix + "config.json", config + "\n")
            }
            if options.writeModelCard, let card = target.modelCard {
                // mergekit names the card after the output directory.
                let name = target.directory.isEmpty
                    ? URL(fileURLWithPath: out.destination).standardizedFileURL.lastPathComponent : target.directory
                try out.write(prefix + "README.md", card.text(name: name))
                try out.write(prefix + "mergekit_config.yml", card.configText)
            }
            if let tokenizer = target.tokenizer, tokenizer.required || options.copyTokenizer {
                for file in tokenizer.files {
                    switch file.contents {
                    case .text(let text): try out.write(prefix + file.name, text)
                    case .copy(let source): try out.copy(from: source, name: prefix + file.name)
                    }
                }
            }
        }
    }
}
