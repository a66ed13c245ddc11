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
    /// Counts what the run did beyond the plan's steps (fused steps).
    public let counters = RunCounters()

    /// Writes the merged model(s) into `outputDirectory`: built in a hidden sibling directory and moved into place at
    /// the end, so a failed run leaves nothing that looks like a model.
    /// - Throws: `ExecutionError` naming the file, directory or tensor: an unreadable input, a write failure, an
    ///   existing non-empty output without `overwrite`, a merge undefined for its inputs.
    ///
    /// With more than one shard, each finished shard but the last ones is synced, hashed and recorded in a ledger in
    /// the hidden directory (`ShardLedger`), which survives a crash or `kill -9`; `options.resume` adopts such a
    /// directory of the same plan, verifies its shards and computes only the rest. With `options.partition`, only
    /// that worker's shards are computed, straight into `outputDirectory` (`runPartition`).
    public func run(outputDirectory: String) throws(ExecutionError) {
        let protected = plan.inputDirectories.map { ProtectedPath($0, kind: .inputModel) } + options.protectedPaths
        if let partition = options.partition {
            try runPartition(outputDirectory: outputDirectory, partition: partition, protected: protected)
            return
        }
        let fingerprint = PlanFingerprint.of(plan)
        let out = try OutputDirectory(destination: outputDirectory, overwrite: options.overwrite, protected: protected,
                                      resume: options.resume ? fingerprint : nil)
        for note in out.notes { options.onNote?(note) }
        let ledgerPath = out.path(OutputDirectory.ledgerName)
        var ledger = ShardLedger(plan: fingerprint)
        var done = Set<Int>()
        if out.resumed, let old = ShardLedger.load(ledgerPath), old.plan == fingerprint {
            (done, ledger) = verified(old, path: { out.path($0) }, destination: out.destination)
            options.onNote?("resuming \(out.destination): \(done.count) of \(plan.schedule.shards.count) shard(s) "
                            + "verified and kept, computing the rest")
        }
        let shards = plan.schedule.shards
        // The shards the last group closes are followed at once by the commit: not worth recording.
        let unrecorded = Set(plan.schedule.groups.last?.closesShards ?? [])
        // Records shards in the background; stopped before a failed run removes its partial output.
        let recorder = shards.count > 1 ? ShardRecorder(ledger: ledger, ledgerPath: ledgerPath) : nil
        let recorded = { (s: Int) in recorder != nil && !unrecorded.contains(s) }
        do {
            if recorder != nil { try ledger.save(ledgerPath) }
            try writeShards(computing: Set(shards.indices).subtracting(done), path: { out.path($0) },
                            makeFolder: { name throws(ExecutionError) in try out.makeDirectory(for: name) },
                            hashing: recorded,
                            finished: { s, digest in
                                guard let recorder, recorded(s) else { return }
                                recorder.record(shards[s].fileName, at: out.path(shards[s].fileName), digest: digest)
                            })
            try recorder?.finish()
            try writeSideFiles(into: out)
            unlink(ledgerPath)
            try out.commit()
        } catch {
            // A shard still being recorded would otherwise write its ledger into the folder being removed, leaving
            // what looks like a killed run's resumable output.
            recorder?.abandon()
            out.discard()
            throw error
        }
    }

    /// Computes worker `partition`'s shards of the plan (`Partitioning`) into `outputDirectory`, shared with the
    /// other workers (`PartitionOutput`): each finished shard is synced, hashed, renamed into place and recorded in
    /// the worker's ledger. With `options.resume`, shards the ledger records whose files still match are kept. A run
    /// that fails withdraws the shards it published and their ledger entries (`PartitionOutput.withdraw`).
    /// - Throws: `ExecutionError` as `run`.
    private func runPartition(outputDirectory: String, partition: PartitionID,
                              protected: [ProtectedPath]) throws(ExecutionError) {
        let fingerprint = PlanFingerprint.of(plan)
        let out = try PartitionOutput(destination: outputDirectory, partition: partition, overwrite: options.overwrite,
                                      protected: protected)
        defer { out.close() }
        let assignment = Partitioning(schedule: plan.schedule, graph: plan.graph, count: partition.count)
        let mine = Set(assignment.shardsOfPartition[partition.index - 1])
        let shards = plan.schedule.shards
        var ledger = ShardLedger(plan: fingerprint, partition: partition.description)
        var done = Set<Int>()
        if options.resume, let old = ShardLedger.load(out.ledgerPath), old.plan == fingerprint {
            (done, ledger) = verified(old, path: { out.finalPath($0) }, destination: out.destination)
            done.formIntersection(mine)
            options.onNote?("partition \(partition): \(done.count) of \(mine.count) shard(s) verified and kept")
        }
        ledger.shards = ledger.shards.filter { name, _ in done.contains { shards[$0].fileName == name } }
        try ledger.save(out.ledgerPath)
        if mine.isEmpty { options.onNote?("partition \(partition): no shards to compute (the plan has \(shards.count))") }
        let recorder = ShardRecorder(ledger: ledger, ledgerPath: out.ledgerPath)
        do {
            try writeShards(computing: mine.subtracting(done), path: { out.stagingPath($0) },
                            makeFolder: { name throws(ExecutionError) in
                                let folder = (out.stagingPath(name) as NSString).deletingLastPathComponent
                                do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
                                catch { throw .io(path: folder, "cannot create: \(OutputDirectory.reason(error))") }
                            },
                            hashing: { _ in true },
                            finished: { s, digest in
                                let name = shards[s].fileName
                                recorder.record(name, at: out.stagingPath(name), digest: digest) { () throws(ExecutionError) in
                                    try out.publish(name)
                                }
                            })
            try recorder.finish()
        } catch {
            // As an ordinary run removes its partial output: the recorder is stopped first, so that no shard is
            // published or recorded after the shards of this run are withdrawn and the ledger is put back.
            recorder.abandon()
            out.withdraw(keeping: ledger)
            throw error
        }
    }

    /// What every shard's metadata records besides `format: pt`: the mergegraph version and the SHA-256 of the config
    /// text, so that any merged file can be traced to its recipe.
    var provenance: [String: String] {
        ["mergegraph_version": MergegraphVersion.string,
         "mergegraph_config_sha256": PlanFingerprint.configSHA256(plan)]
    }

    /// Finishes a partitioned output (`run --partition I/N` for every I): checks that every shard of the plan is in
    /// `outputDirectory` with the size and SHA-256 its partition's ledger records under this plan's fingerprint, then
    /// writes the index, config and tokenizer files and removes the control folder (`.mergegraph`). The result is
    /// byte-identical to an ordinary run's.
    /// - Throws: `ExecutionError.partitionsIncomplete` naming each partition that has not run or did not finish (no
    ///   ledger) and each missing, unreadable (with the system's reason), damaged or foreign shard with the partition
    ///   to rerun; `.locked` when a partition is still running; `.io` when there is nothing to finalize; `.refused`
    ///   when shards this output does not have (an earlier output's) lie beside it.
    public func finalize(outputDirectory: String) throws(ExecutionError) {
        guard let destination = OutputDirectory.realPath(outputDirectory) else {
            throw .io(path: outputDirectory, "does not exist: run the partitions first (mergegraph run CONFIG OUT --partition I/N)")
        }
        let control = (destination as NSString).appendingPathComponent(PartitionOutput.controlName)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: control)) ?? []
        var ledgers: [Int: ShardLedger] = [:]
        var counts = Set<Int>()
        for name in names where name.hasPrefix("partition-") && name.hasSuffix(".json") {
            let parts = name.dropFirst("partition-".count).dropLast(".json".count).split(separator: "-")
            guard parts.count == 3, parts[1] == "of", let i = Int(parts[0]), let n = Int(parts[2]) else { continue }
            counts.insert(n)
            if let ledger = ShardLedger.load((control as NSString).appendingPathComponent(name)) { ledgers[i] = ledger }
        }
        guard let count = counts.first else {
            // A finished output: finalized already (which removes the ledgers), or an ordinary run's.
            if let finished = PartitionOutput.finishedOutputFile(in: destination) {
                throw .io(path: destination, "holds a finished model output ('\(finished)') and no partition ledgers: "
                          + "it was finalized already, or written by an ordinary run; there is nothing to finalize")
            }
            // No worker has finished: none ran yet, or each that did failed and withdrew its ledger.
            throw .io(path: destination, "holds no partition ledgers (\(PartitionOutput.controlName)/partition-I-of-N.json): "
                      + "no partition has run or finished; run (or rerun) mergegraph run CONFIG OUT --partition I/N "
                      + "for every I, then finalize again")
        }
        guard counts.count == 1 else {
            throw .refused(path: destination, "holds partitions of different counts (\(counts.sorted().map(String.init).joined(separator: ", "))); "
                           + "remove \(control) and rerun the partitions with one count")
        }
        // No partition may still be writing.
        for i in 1...count {
            let id = PartitionID(index: i, count: count)
            let lock = (control as NSString).appendingPathComponent(id.fileStem + ".lock")
            guard FileManager.default.fileExists(atPath: lock) else { continue }
            let fd = try OutputDirectory.lock(lock, destination: "\(destination) (partition \(id))")
            unlink(lock)
            close(fd)
        }
        let fingerprint = PlanFingerprint.of(plan)
        // Partitions of another plan: one answer for all, with the shards they wrote beside this plan's, which shows
        // a differing option such as --out-shard-size at a glance.
        let foreign = ledgers.filter { $0.value.plan != fingerprint }
        if !foreign.isEmpty {
            let written = Set(foreign.values.flatMap(\.shards.keys)).sorted()
            let planned = plan.schedule.shards.map(\.fileName)
            func names(_ files: [String]) -> String {
                "\(files.count) shard\(files.count == 1 ? "" : "s") (" + files.prefix(3).joined(separator: ", ")
                    + (files.count > 3 ? ", …" : "") + ")"
            }
            // The same shard names: the difference is not the sharding, so the names would only mislead.
            let shards = Set(written) == Set(planned)
                ? "they wrote the shards this plan has, so the config, an input's bytes or an option other than "
                    + "--out-shard-size differs"
                : "they wrote " + names(written) + ", this plan has " + names(planned)
            throw .refused(path: destination, "partition\(foreign.count == 1 ? "" : "s") "
                           + foreign.keys.sorted().map { "\($0)/\(count)" }.joined(separator: ", ")
                           + " ran a different plan from the one finalize compiled (the config, its inputs or the options "
                           + "differ): " + shards
                           + "; give finalize the config and options (--out-shard-size, --random-seed, …) the partitions "
                           + "ran with, or rerun the partitions")
        }
        let assignment = Partitioning(schedule: plan.schedule, graph: plan.graph, count: count)
        var problems: [PartitionProblem] = []
        for (s, shard) in plan.schedule.shards.enumerated() {
            let p = assignment.partition(ofShard: s) ?? 1
            func problem(_ message: String) {
                problems.append(PartitionProblem(partition: p, count: count, kind: .shard(message)))
            }
            // No ledger: not run, or failed (a failed worker withdraws its ledger and shards). Said once per partition.
            guard let ledger = ledgers[p] else {
                let unfinished = PartitionProblem(partition: p, count: count, kind: .notFinished)
                if !problems.contains(unfinished) { problems.append(unfinished) }
                continue
            }
            guard let entry = ledger.shards[shard.fileName] else { problem("\(shard.fileName) was not finished"); continue }
            let file = (destination as NSString).appendingPathComponent(shard.fileName)
            let actual: ShardLedger.Entry
            do {
                actual = try ShardLedger.digest(of: file)
            } catch {
                // Missing only when nothing has the name; a shard that is there but cannot be read (a directory in
                // its place, no read permission, a read error) is named with the system's reason.
                var status = stat()
                if lstat(file, &status) != 0 && errno == ENOENT { problem("\(shard.fileName) is missing"); continue }
                problem("\(shard.fileName): \(error.reason)")
                continue
            }
            if actual != entry { problem("\(shard.fileName) is damaged (its size or SHA-256 differs from the ledger's)") }
        }
        guard problems.isEmpty else { throw .partitionsIncomplete(path: destination, problems: problems) }
        // Shards of an earlier output in the same directory (workers with --overwrite replace only the files they
        // write): refused rather than left beside the index, where loaders that glob the shards would read them.
        let planned = Set(plan.schedule.shards.map(\.fileName))
        let stale = ((try? FileManager.default.contentsOfDirectory(atPath: destination)) ?? [])
            .filter { OutputDirectory.isShardName($0) && !planned.contains($0) }.sorted()
        if let first = stale.first {
            throw .refused(path: destination, "holds \(first)" + (stale.count > 1 ? " and \(stale.count - 1) more shards" : "")
                           + ", which this output does not have (an earlier output's); remove "
                           + (stale.count > 1 ? "them" : "it") + ", then finalize again")
        }
        try writeSideFiles(into: FinalizedFolder(destination: destination))
        try? FileManager.default.removeItem(atPath: control)
    }

    /// Which of `ledger`'s shards are still on disk as recorded (size and SHA-256 of the file at `path(name)`), as
    /// shard indices, and the ledger reduced to them. Each recorded shard that is not is named in a note
    /// (`options.onNote`), as a shard of `destination` (the output directory the user gave, resolved): it will be
    /// computed again.
    private func verified(_ ledger: ShardLedger, path: (String) -> String,
                          destination: String) -> (Set<Int>, ShardLedger) {
        var kept = ShardLedger(plan: ledger.plan, partition: ledger.partition)
        var done = Set<Int>()
        for (s, shard) in plan.schedule.shards.enumerated() {
            guard let entry = ledger.shards[shard.fileName] else { continue }
            let shardName = "shard \(shard.fileName) of \(destination)"
            let actual: ShardLedger.Entry
            do {
                actual = try ShardLedger.digest(of: path(shard.fileName))
            } catch {
                options.onNote?("--resume: recorded \(shardName): \(error.reason); it will be recomputed")
                continue
            }
            guard actual == entry else {
                let what = actual.bytes == entry.bytes ? "fails its SHA-256 check"
                    : "has \(actual.bytes) bytes where \(entry.bytes) were recorded"
                options.onNote?("--resume: recorded \(shardName) \(what) (changed since it was written); "
                                + "it will be recomputed")
                continue
            }
            kept.shards[shard.fileName] = entry
            done.insert(s)
        }
        return (done, kept)
    }

    /// Computes and writes the shards `computing` (indices into the schedule's shards; groups that write none of
    /// them are skipped, writes into other shards dropped), each opened at `path(fileName)` after `makeFolder`;
    /// `finished(s, digest)` is called once shard `s` is complete on disk, with its size and SHA-256 when
    /// `hashing(s)` asked for them and its bytes were written in file order (`ShardDigest`). The groups run on the
    /// schedule's lanes (`GroupLanes`); the closures are called from one thread at a time, never after this returns.
    private func writeShards(computing: Set<Int>, path: @escaping (String) -> String,
                             makeFolder: @escaping (String) throws(ExecutionError) -> Void,
                             hashing: @escaping (Int) -> Bool,
                             finished: @escaping (Int, ShardLedger.Entry?) -> Void) throws(ExecutionError) {
        var models: [any CheckpointReader] = []
        for input in plan.graph.models {
            do {
                switch input.kind {
                case .checkpoint: models.append(try catalog.reader(at: input.path))
                case .loraAdapter: models.append(try catalog.adapterReader(at: input.path))
                }
            } catch {
                throw .checkpoint(error)
            }
        }
        let graph = plan.graph
        let schedule = plan.schedule
        memory.retainLimit = MemoryAccount.retainLimit(predictedPeak: schedule.predictedPeakBytes,
                                                      budget: schedule.budgetBytes)
        if let shard = schedule.groups.first(where: { $0.writerBytes > 0 }),
           output.bytesPerOpenShard > shard.writerBytes {
            throw .planMismatch("the output writer holds \(output.bytesPerOpenShard) bytes per open shard, more than "
                                + "the plan was made for; compile with this writer's StreamingCostModel(output:)")
        }
        let shardOf = schedule.shardOfOutput
        let computes = { (o: Int) in shardOf[o].map { computing.contains($0 - 1) } ?? false }
        var writers: [Int: any CheckpointShardWriter] = [:]
        var digests: [Int: ShardDigest] = [:]
        let computed = schedule.shards.indices.filter { computing.contains($0) }
        var progress = RunProgress(tensorCount: computed.reduce(0) { $0 + schedule.shards[$1].outputs.count },
                                   byteCount: computed.reduce(0) { $0 + schedule.shards[$1].byteCount })
        let order = schedule.groups.indices.filter { g in
            schedule.groups[g].steps.contains { $0.writes.contains(where: computes) }
        }
        var outputTypes: [Int: TensorType] = [:]
        for o in graph.outputs.indices { outputTypes[o] = graph[graph.outputs[o].value].type }
        let callbacks = GroupLanes.Callbacks(
            open: { g throws(ExecutionError) in
                for s in schedule.groups[g].opensShards where computing.contains(s) {
                    let digest = hashing(s) ? ShardDigest() : nil
                    digests[s] = digest
                    writers[s + 1] = try openWriter(schedule.shards[s], path: path, makeFolder: makeFolder,
                                                    observer: digest)
                }
            },
            run: { g, parallel, emit throws(ExecutionError) in
                try runGroup(schedule.groups[g], models: models, parallel: parallel,
                             writes: { o throws(ExecutionError) in
                                 guard let shardNumber = shardOf[o] else { throw .planMismatch("output \(o) has no shard") }
                                 return computing.contains(shardNumber - 1)
                             }, sink: emit)
            },
            write: { o, offset, chunk throws(ExecutionError) in
                guard let writer = shardOf[o].flatMap({ writers[$0] }) else {
                    throw .planMismatch("output \(o) has no open shard")
                }
                let name = graph.outputs[o].name
                switch chunk {
                case .floats(let values):
                    try Self.write(writer, name, offset, values)
                    progress.bytesWritten += values.count * outputTypes[o]!.dtype.byteSize
                case .bytes(let bytes):
                    try Self.write(writer, name, offset, bytes)
                    progress.bytesWritten += bytes.count
                }
                options.onProgress?(progress)
            },
            written: { g throws(ExecutionError) in
                let group = schedule.groups[g]
                progress.tensorsDone += group.steps.flatMap(\.writes).filter(computes).count
                for s in group.closesShards {
                    guard let writer = writers.removeValue(forKey: s + 1) else { continue }
                    do throws(CheckpointError) { try writer.finish() } catch { throw .checkpoint(error) }
                    memory.release(output.bytesPerOpenShard)
                    let shard = schedule.shards[s]
                    finished(s, digests.removeValue(forKey: s)?.entry)
                    options.onShardDone?(shard.fileName, shard.outputs.count)
                }
                options.onProgress?(progress)
            })
        try GroupLanes(schedule: schedule, order: order, memory: memory, outputTypes: outputTypes,
                       callbacks: callbacks).run()
    }

    /// Gives each `.sub` step whose minuend is a float load read by nothing else a `LoadSubtractChunkKernel`, which
    /// reads, decodes and subtracts block by block (`ExecutionOptions.fusesLoadSubtractions`). The load must be
    /// computed in exactly the sweeps the subtraction is computed in (for a subtraction kept whole, `kept`: up to the
    /// first, after which the runner reads the kept values and computes neither), be no output and not kept whole, and
    /// neither of the two be held (`held`); the steps, their buffers and frees stay as planned. SCE's task vectors,
    /// kept whole across its passes, are read so. Returns how many were fused.
    @discardableResult
    static func fuseLoadSubtractions(_ entries: inout [ChunkRunner.Entry], sweeps: [Sweep], outputs: Set<Int>,
                                     held: Set<Int>, kept: Set<Int> = []) -> Int {
        var fused = 0
        var reads = [Int](repeating: 0, count: entries.count)
        for entry in entries { for o in entry.operands { reads[o] += 1 } }
        /// Whether the load `l` is computed in exactly the sweeps the subtraction `s` is, up to the first computing
        /// a kept `s`, and in none after it; neither observed.
        func sameSweeps(_ l: Int, _ s: Int) -> Bool {
            var complete = false
            for sweep in sweeps {
                if sweep.observers.contains(l) || sweep.observers.contains(s) { return false }
                if complete {
                    if sweep.computes.contains(l) { return false }
                    continue
                }
                if sweep.computes.contains(l) != sweep.computes.contains(s) { return false }
                if kept.contains(s), sweep.computes.contains(s) { complete = true }
            }
            return true
        }
        for (s, entry) in entries.enumerated() {
            guard let subtract = entry.kernel as? ArithmeticChunkKernel, subtract.isSubtraction,
                  entry.operands.count == 2, case let l = entry.operands[0], l != entry.operands[1],
                  let load = entries[l].kernel as? LoadChunkKernel, !load.readByConsumer, reads[l] == 1,
                  !outputs.contains(l), !kept.contains(l), !held.contains(l), !held.contains(s), sameSweeps(l, s)
            else { continue }
            entries[s].kernel = LoadSubtractChunkKernel(load: load, subtract: subtract)
            fused += 1
        }
        return fused
    }

    /// Computes `group` chunk by chunk with `parallel`, reading inputs from `models` (the plan's, in order), and passes
    /// every chunk of an output `writes(output)` accepts to `sink(output, range, values)` (an index into
    /// `Graph.outputs`; f32 values, or an integer or BOOL tensor's stored bytes); the others are dropped unchecked.
    /// - Throws: `ExecutionError`: an unreadable input, a kernel's error (`.undefinedMerge` naming the group's first
    ///   tensor), `.nonFinite` for an output with an infinite or NaN value none of its inputs had (unless
    ///   `options.allowNonFinite`), what `sink` throws.
    private func runGroup(_ group: ChunkGroup, models: [any CheckpointReader], parallel: Parallel,
                          writes: (Int) throws(ExecutionError) -> Bool,
                          sink: (Int, Range<Int>, UnsafePointer<Float>) throws(ExecutionError) -> Void)
        throws(ExecutionError) {
        let graph = plan.graph
        let threads = plan.schedule.threads
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
            var context = KernelContext(shape: node.type.shape, dtype: node.type.dtype, parallel: parallel,
                                        memory: memory, operandDTypes: operandTypes.map(\.dtype))
            context.holdsOperands = group.holding.contains(step.value)
            let kernel: ChunkKernel
            if case .load(let m, let name) = node.op, !node.type.dtype.isFloatingPoint {
                kernel = try RawLoadChunkKernel(reader: models[m], tensor: name, context: context)
            } else if case .load(let m, let name) = node.op {
                let load = try LoadChunkKernel(reader: models[m], tensor: name, staging: staging, context: context,
                                               checksFinite: !options.allowNonFinite)
                loads[entries.count] = load
                kernel = load
            } else if case .loraDelta(let m, let a, let b, let rank, let scale, let transposed) = node.op {
                kernel = try LoRADeltaChunkKernel(reader: models[m], a: a, b: b, rank: rank, scale: scale,
                                                  transposed: transposed, context: context)
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
        if options.fusesLoadSubtractions {
            counters.noteFusedLoadSubtractions(Self.fuseLoadSubtractions(
                &entries, sweeps: group.sweeps, outputs: Set(outputEntries),
                held: Set(group.holding.compactMap { entryOf[$0] }), kept: Set(group.retained.compactMap { entryOf[$0] })))
        }
        let runner = ChunkRunner(entries: entries, sweeps: group.sweeps, elementCount: group.elementCount,
                                 chunkElements: group.chunkElements, bufferBytesPerElement: group.bufferBytesPerElement,
                                 memory: memory,
                                 retain: Set(group.retained.compactMap { entryOf[$0] }),
                                 planes: Dictionary(uniqueKeysWithValues: group.retained.compactMap { v in
                                     entryOf[v].flatMap { e in
                                         group.keepsAsPlane(graph[v].type.dtype) ? (e, graph[v].type.dtype) : nil
                                     }
                                 }),
                                 holding: Set(group.holding.compactMap { entryOf[$0] }), parallel: parallel,
                                 finishingThreads: group.finishingThreads, handsOverPlanes: options.handsOverPlanes)
        var nonFiniteOutputs = Set<Int>()
        let checksFinite = !options.allowNonFinite
        do {
            try runner.run(outputs: outputEntries) { k, range, values throws(ExecutionError) in
                let o = outputs[k]
                guard try writes(o) else { return }
                let dtype = graph[graph.outputs[o].value].type.dtype
                if dtype.isFloatingPoint, checksFinite, !nonFiniteOutputs.contains(k),
                   FiniteCheck.exceeds(values, count: range.count, limitBits: FiniteCheck.limitBits(for: dtype)) {
                    nonFiniteOutputs.insert(k)
                }
                try sink(o, range, values)
            }
        } catch {
            guard case .undefinedMerge(_, let op, let reason) = error else { throw error }
            throw .undefinedMerge(value: "tensor \"\(graph.outputs[outputs[0]].name)\"", op: op, reason)
        }
        counters.notePlanesHandedOver(runner.planesHandedOver)
        // A non-finite value is an error unless an input of that output had one (inputs may hold Inf/NaN on
        // purpose, e.g. attention masks); all chunks have been read by now, statistics sweeps included.
        for k in nonFiniteOutputs.sorted()
        where !feedingLoads[outputEntries[k]].contains(where: { loads[$0]!.sawNonFinite }) {
            throw .nonFinite(tensor: graph.outputs[outputs[k]].name)
        }
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

    private func openWriter(_ shard: Shard, path: (String) -> String,
                            makeFolder: (String) throws(ExecutionError) -> Void,
                            observer: ShardDigest?) throws(ExecutionError) -> any CheckpointShardWriter {
        let layout = shard.outputs.map { o -> (name: String, dtype: DType, shape: [Int]) in
            let output = plan.graph.outputs[o]
            let type = plan.graph[output.value].type
            return (output.name, type.dtype, type.shape)
        }
        try makeFolder(shard.fileName)
        memory.charge(output.bytesPerOpenShard)
        do {
            return try output.openShard(path: path(shard.fileName), tensors: layout, metadata: provenance, observer: observer)
        } catch {
            throw .checkpoint(error)
        }
    }

    private func writeSideFiles(into out: any ModelFolder) throws(ExecutionError) {
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
