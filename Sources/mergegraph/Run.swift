import ArgumentParser
import Checkpoint
import Executor
import IR
import Foundation

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

    @Flag(help: "Replace OUT_DIR if it exists and is not empty.")
    var overwrite = false

    @Flag(help: "Report each shard as it is written.")
    var verbose = false

    @Flag(help: "Show no progress (by default a bar on a terminal, a line every 10 seconds otherwise).")
    var quiet = false

    func run() throws {
        let catalog = LocalCheckpointCatalog()
        try reportingErrors {
            let plan = try compile.compile(catalog: catalog)
            if dumpIR { print(plan.dump(), terminator: "") }
            let verbose = self.verbose
            let progress = ProgressReporter(quiet: quiet)
            let executor = PlanExecutor(plan: plan, catalog: catalog, options: ExecutionOptions(
                copyTokenizer: copyTokenizer, overwrite: overwrite,
                onShardDone: { name, count in
                    guard verbose else { return }
                    progress.interrupt()
                    Console.error("wrote \(name) (\(count) tensors)")
                },
                onProgress: { progress.update($0) }))
            do {
                try executor.run(outputDirectory: outDir)
            } catch {
                progress.interrupt()
                throw error
            }
            if verbose {
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
    } catch {
        Console.error("error: \(error)")
        throw ExitCode.failure
    }
}
