import ArgumentParser
import Planner

/// `mergegraph methods [--markdown]`: lists the implemented merge methods from their declarations.
struct MethodsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "methods",
        abstract: "List the merge methods: parameters with defaults and ranges, base model and input counts.")

    @Flag(help: "Print the README's Markdown table of merge methods instead of one line per method.")
    var markdown = false

    func run() {
        print(markdown ? MethodRegistry.markdownTable() : MethodRegistry.listing(), terminator: "")
    }
}
