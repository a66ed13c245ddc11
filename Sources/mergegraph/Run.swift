import ArgumentParser
import Executor
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

    func run() throws {
        let catalog = SafetensorsCatalog()
        try reportingErrors {
            let plan = try compile.compile(catalog: catalog)
            if dumpIR { print(plan.dump(), terminator: "") }
            let verbose = self.verbose
            let executor = PlanExecutor(plan: plan, catalog: catalog, options: ExecutionOptions(
                threads: compile.threads, copyTokenizer: copyTokenizer, overwrite: overwrite,
                onShardDone: { name, count in if verbose { Console.error("wrote \(name) (\(count) tensors)") } }))
            try executor.run(outputDirectory: outDir)
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
