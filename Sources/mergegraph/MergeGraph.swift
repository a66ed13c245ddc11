import ArgumentParser

/// The `mergegraph` command: compiles mergekit configs into a tensor dataflow graph and runs it.
@main
struct MergeGraph: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mergegraph",
        abstract: "Merge LLM checkpoints from mergekit configs, compiled to one dataflow graph.",
        subcommands: [Run.self, PlanCommand.self, MethodsCommand.self, LegacyCommand.self, BakllamaCommand.self],
        defaultSubcommand: Run.self
    )
}
