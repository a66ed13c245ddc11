import ArgumentParser
import Checkpoint
import Executor
import IR
import Foundation
import Parser

/// `mergegraph run CONFIG OUT_DIR`: compile, then write the merged checkpoint.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compile a config and write the merged model to OUT_DIR.")

    @OptionGroup var compile: CompileOptions

    @Argument(help: "Where to write the merged model.")
    var outDir: String

    @Flag(name: .customLong("dump-ir"), help: "Print the compiled graph before running it.")
    var dumpIR = false

    @Flag(name: .customLong("copy-tokenizer"), inversion: .prefixedNo, help: "Copy tokenizer files from the base (or first) model.")
    var copyTokenizer = true

    @Flag(name: .customLong("write-model-card"), inversion: .prefixedNo,
          help: "Write a model card (README.md: models, method, config, plan summary; offline) and mergekit_config.yml.")
    var writeModelCard = true

    @Flag(help: "Replace OUT_DIR if it exists and is not empty.")
    var overwrite = false

    @Flag(name: .customLong("allow-non-finite"),
          help: "Write merged tensors with infinite or NaN values that none of their inputs had (an error by default).")
    var allowNonFinite = false

    @Flag(name: [.customLong("verbose"), .customShort("v")],
          help: "Report each shard as it is written and the memory held (mergekit's -v; repeat as you like).")
    var verbose: Int

    @OptionGroup(title: "mergekit-yaml options") var mergekit: MergekitOptions

    @Flag(help: "Show no progress (by default a bar on a terminal, a line every 10 seconds otherwise).")
    var quiet = false

    @Flag(help: "Continue a killed run of the same config into OUT_DIR: its finished shards are verified (SHA-256) and kept, the rest computed. With --partition: keep the partition's verified shards.")
    var resume = false

    @OptionGroup(title: "Scaling out (see README: Scaling out)") var partitioning: PartitionOptions

    func run() throws { try run(translated: nil) }

    /// Runs `translated` (a config `legacy` or `bakllama` made from their arguments) instead of reading `compile.config`.
    func run(translated: ConfigFile?) throws {
        let downloads = ProgressReporter(quiet: quiet)
        let catalog = compile.catalog(progress: downloads)
        try reportingErrors {
            for note in mergekit.notes { Console.error(note) }
            let partition = try partitioning.resolve().map { PartitionID(index: $0.index, count: $0.count) }
            var plan = try translated.map { try compile.compile($0, catalog: catalog) } ?? compile.compile(catalog: catalog)
            if let partition {
                plan.header += Partitioning(schedule: plan.schedule, graph: plan.graph, count: partition.count)
                    .describe(shards: plan.schedule.shards, current: partition.index)
            }
            if dumpIR { print(plan.dump(), terminator: "") }
            // The plan read only headers of Hub models; what the run reads is downloaded now, before any output.
            if let download = CompileOptions.downloadSummary(plan, catalog: catalog) {
                if !quiet { Console.error("downloading \(download)") }
                do {
                    try catalog.fetchPending(for: plan.inputDirectories)
                } catch {
                    downloads.interrupt()
                    throw error
                }
            }
            let verbose = self.verbose > 0
            let progress = ProgressReporter(quiet: quiet)
            var executor = PlanExecutor(plan: plan, catalog: catalog, options: ExecutionOptions(
                copyTokenizer: copyTokenizer, overwrite: overwrite,
                onShardDone: { name, count in
                    guard verbose else { return }
                    progress.interrupt()
                    Console.error("wrote \(name) (\(count) tensors)")
                },
                onProgress: { progress.update($0) }))
            executor.options.allowNonFinite = allowNonFinite
            executor.options.writeModelCard = writeModelCard
            executor.options.resume = resume
            executor.options.partition = partition
            executor.options.onNote = { note in
                progress.interrupt()
                Console.error(note)
            }
            executor.options.protectedPaths = [
                ProtectedPath(compile.config, kind: .configFile),
                ProtectedPath(FileManager.default.currentDirectoryPath, kind: .workingDirectory),
            ]
            do {
                try executor.run(outputDirectory: outDir)
            } catch {
                progress.interrupt()
                throw error
            }
            if self.verbose > 0 {
                let held = executor.memory.peakBytes, predicted = plan.schedule.predictedPeakBytes
                Console.error("peak memory held: \(formatBytes(held)) (\(held) bytes; predicted \(predicted) bytes)")
            }
        }
    }
}

/// Runs `body`; config, plan and execution errors become one `error:` line on standard error and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ValidationError {
        throw error
    } catch let code as ExitCode {
        throw code
    } catch {
        Console.error("error: \(error)")
        throw ExitCode.failure
    }
}
