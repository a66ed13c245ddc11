import ArgumentParser
import Foundation
import IR
import Parser

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
        if let first = CommandLine.arguments.dropFirst().first, let command = misspeltCommand(first) {
            Console.error("error: \(first): no such config file (did you mean the '\(command)' command?)")
            exit(withError: ExitCode.failure)
        }
        main(nil)
    }

    /// The command `argument` (the first) most likely misspells: `run` is the default command, so a misspelt command
    /// name would be read as a config path; nil for an option, a command, a path with a folder or an existing file.
    static func misspeltCommand(_ argument: String) -> String? {
        let commands = configuration.subcommands.map { $0._commandName }
        guard !argument.hasPrefix("-"), !argument.contains("/"), !commands.contains(argument),
              !FileManager.default.fileExists(atPath: argument) else { return nil }
        return KeySuggestion.closest(to: argument, among: commands)
    }
}
