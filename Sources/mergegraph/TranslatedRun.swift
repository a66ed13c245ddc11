import ArgumentParser
import Checkpoint
import Parser

/// What `legacy` and `bakllama` do with the config they make from their arguments: print it (`--print-yaml`),
/// print its plan (`--plan-only`, in `--format`), or run it as `mergegraph run` would. Every other argument is
/// `mergegraph run`'s (OUT_DIR, `--max-memory`, `--overwrite`, `--dump-ir`, mergekit-yaml's options, …) and is
/// parsed by `run` itself, so the commands accept exactly its options with its checks.
struct TranslatedRunOptions: ParsableArguments {
    @Flag(name: .customLong("print-yaml"), inversion: .prefixedNo,
          help: "Print the equivalent mergekit YAML config (mergekit-yaml runs it) before merging.")
    var printYAML = false

    @Flag(name: .customLong("plan-only"), help: "Compile and print the plan (as `mergegraph plan`) without merging; OUT_DIR may be left out.")
    var planOnly = false

    @Option(help: "With --plan-only: the plan as text (the IR), json or dot.")
    var format: PlanFormat = .text

    @Argument(parsing: .allUnrecognized,
              help: ArgumentHelp("OUT_DIR and any option of `mergegraph run` (--max-memory, --overwrite, --dump-ir, "
                                 + "--no-copy-tokenizer, -j, --cuda, …).", valueName: "run-arguments"))
    var runArguments: [String] = []

    /// Parses `text` (labelled `label` in messages) and prints, plans or runs it.
    func execute(_ config: MergekitYAML, label: String) throws {
        let text = config.text
        if printYAML { print(text) }  // a blank line after it, as mergekit-legacy prints yaml.dump's text
        let run = try parseRun(label: label)
        var parsed: ConfigFile?
        try reportingErrors {
            let file = try ConfigParser.parse(text: text, file: label, strict: run.compile.strict)
            if planOnly {
                let plan = try run.compile.compile(file, catalog: run.compile.catalog())
                print(try format.render(plan), terminator: "")
            }
            parsed = file
        }
        if !planOnly, let parsed { try run.run(translated: parsed) }
    }

    /// `run`'s options from the remaining arguments; with `--plan-only`, OUT_DIR is optional.
    private func parseRun(label: String) throws -> Run {
        do {
            return try Run.parse([label] + runArguments)
        } catch {
            if planOnly, let run = try? Run.parse([label] + runArguments + ["(no output: --plan-only)"]) { return run }
            let message = Run.message(for: error)
            throw usageError(message.contains("'<out-dir>'") ? "missing OUT_DIR, the directory to write the merged model to"
                                                               : message)
        }
    }
}

/// Reports a problem with the command line (`message` names the flag or argument at fault) and exits with
/// ArgumentParser's validation status, 64.
func usageError(_ message: String) -> ExitCode {
    Console.error("error: " + message)
    return ExitCode.validationFailure
}
