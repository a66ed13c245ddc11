import ArgumentParser
import Checkpoint
import Executor
import IR
import Parser
import Planner

/// `mergegraph plan CONFIG`: compile only and print the IR (reads headers, no tensor data), or the plan as JSON or DOT.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Compile a config and print its IR without running it.")

    @OptionGroup var compile: CompileOptions

    @Option(help: "text (the IR, as --dump-ir), json (schemas/plan.schema.json) or dot (Graphviz).")
    var format: PlanFormat = .text

    @Option(help: "With --format json or dot: only the group of nodes that computes this output tensor.")
    var tensor: String?

    @OptionGroup(title: "Scaling out") var partitioning: PartitionOptions

    /// - Throws: `ValidationError` for `--tensor` with the text format (swift-argument-parser prints `plan`'s usage).
    func validate() throws { try format.validate(tensor: tensor) }

    func run() throws {
        try reportingErrors {
            let catalog = compile.catalog()
            let file = try ConfigParser.parse(file: compile.config, strict: compile.strict)
            // How the inputs' vocabularies differ, before the plan (or before the error that they differ): on
            // standard output with the text plan, on standard error beside JSON and DOT.
            let report = VocabularyReport.lines(for: file, catalog: catalog).map { "// " + $0 }
            if !report.isEmpty {
                if format == .text { print(report.joined(separator: "\n") + "\n") } else { Console.error(report.joined(separator: "\n")) }
            }
            var plan = try compile.compile(file, catalog: catalog)
            if let partition = try partitioning.resolve() {
                plan.header += Partitioning(schedule: plan.schedule, graph: plan.graph, count: partition.count)
                    .describe(shards: plan.schedule.shards, current: partition.index)
            }
            let rendered: String
            do {
                rendered = try format.render(plan, tensor: tensor)
            } catch let error as ValidationError {
                // A `--tensor` the plan does not write is known only once it is compiled: an error of this run,
                // reported without the top-level usage a `ValidationError` thrown from `run()` would print.
                throw usageError(error.message)
            }
            print(rendered, terminator: "")
            if let download = CompileOptions.downloadSummary(plan, catalog: catalog) {
                // Only headers were read; a run downloads the rest first.
                if format == .text { print("// download before a run: \(download)") } else { Console.error("note: a run downloads \(download) first") }
            }
        }
    }
}
