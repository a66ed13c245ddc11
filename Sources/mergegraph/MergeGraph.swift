import ArgumentParser
import IR

/// The `mergegraph` command: compiles mergekit configs into a tensor dataflow graph and runs it.
@main
struct MergeGraph: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mergegraph",
        abstract: "Merge LLM checkpoints from mergekit configs, compiled to one dataflow graph.",
        version: MergegraphVersion.string,
        subcommands: [Run.self, PlanCommand.self, FinalizeCommand.self, MethodsCommand.self, LegacyCommand.self, BakllamaCommand.self],
        defaultSubcommand: Run.self
    )

    /// Takes SIGINT/SIGTERM on a dedicated thread before anything else runs, then parses and runs the command.
    static func main() {
        TerminationSignals.install()
        main(nil)
    }
}
