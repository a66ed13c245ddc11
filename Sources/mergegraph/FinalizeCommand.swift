import ArgumentParser
import Checkpoint
import Executor
import Foundation

/// `mergegraph finalize CONFIG OUT_DIR`: after every `run --partition I/N` of a merge, checks every shard against
/// its partition's ledger and writes the index, config and tokenizer files.
struct FinalizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finalize",
        abstract: "Finish a merge split with run --partition: check every shard (SHA-256), write the index, config and tokenizer files.",
        discussion: "Give the same config and compile options as the partitioned runs. A missing or damaged shard is an error naming the partition to rerun.")

    @OptionGroup var compile: CompileOptions

    @Argument(help: "The output directory the partitions wrote.")
    var outDir: String

    @Flag(name: .customLong("copy-tokenizer"), inversion: .prefixedNo, help: "Copy tokenizer files from the base (or first) model.")
    var copyTokenizer = true

    @Flag(name: .customLong("write-model-card"), inversion: .prefixedNo,
          help: "Write a model card (README.md) and mergekit_config.yml, as run does.")
    var writeModelCard = true

    func run() throws {
        try reportingErrors {
            let catalog = compile.catalog()
            let plan = try compile.compile(catalog: catalog)
            var executor = PlanExecutor(plan: plan, catalog: catalog,
                                        options: ExecutionOptions(copyTokenizer: copyTokenizer))
            executor.options.writeModelCard = writeModelCard
            try executor.finalize(outputDirectory: outDir)
        }
    }
}
