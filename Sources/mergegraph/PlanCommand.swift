import ArgumentParser
import Checkpoint
import Executor

/// `mergegraph plan CONFIG`: compile only and print the IR (reads headers, no tensor data).
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Compile a config and print its IR without running it.")

    @OptionGroup var compile: CompileOptions

    func run() throws {
        try reportingErrors {
            let plan = try compile.compile(catalog: LocalCheckpointCatalog())
            print(plan.dump(), terminator: "")
        }
    }
}
