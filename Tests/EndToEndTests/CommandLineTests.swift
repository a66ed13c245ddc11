import Foundation
import Planner
import XCTest

/// Runs the built `mergegraph` binary as a user would: exit codes, messages, and what is left on disk.
final class CommandLineTests: XCTestCase {
    typealias Result = Binary.Result

    /// The `mergegraph` executable built beside the test bundle.
    static var binary: URL { Binary.binary }

    func run(_ arguments: [String], in directory: String = Fixtures.conformance) throws -> Result {
        try Binary.run(arguments, in: directory)
    }

    /// Writes `text` as a config in a scratch folder that links the conformance models.
    func scratchConfig(_ text: String) throws -> (directory: String, config: String) {
        let dir = Fixtures.temporaryDirectory("cli")
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/models", withDestinationPath: "\(Fixtures.conformance)/models")
        try text.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        return (dir, "c.yml")
    }

    /// A linear merge of two models whose vocabularies differ (130 rows and the tokenizer fixture's), with `line`
    /// as its sixth line (`scratchConfig`).
    func mixedVocabularyConfig(_ line: String) throws -> (directory: String, config: String) {
        try scratchConfig("""
            models:
              - model: \(Fixtures.conformance)/models/llama-ft-a-vocab130
              - model: \(Fixtures.conformance)/models/llama-ft-b-tok
            merge_method: linear
            parameters: {weight: 1}
            \(line)
            """)
    }

    func assertFails(_ config: String, containing phrases: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let (dir, name) = try scratchConfig(config)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try run(["run", name, "out"], in: dir)
        XCTAssertNotEqual(result.status, 0, file: file, line: line)
        for phrase in phrases {
            XCTAssertTrue(result.stderr.contains(phrase), "expected '\(phrase)' in: \(result.stderr)", file: file, line: line)
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(left, ["c.yml", "models"], "a failed run must leave no output", file: file, line: line)
    }

    func testRunWritesModelConfigAndPrintsIR() throws {
        let out = Fixtures.temporaryDirectory("cli-run")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try run(["run", Fixtures.caseConfig("linear"), out, "--dump-ir", "--overwrite"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("= weighted_sum(0.6, 0.4) %0, %1 : f32[128,32]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("// summary: 117 nodes; 78 loads requested, 78 unique"), result.stdout)
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(files, ["README.md", "config.json", "mergekit_config.yml", "model.safetensors"])
        // The model card: front matter, the output directory's name, method, models, the config as given, the plan.
        let card = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
        let config = try String(contentsOfFile: "\(Fixtures.conformance)/\(Fixtures.caseConfig("linear"))", encoding: .utf8)
        XCTAssertTrue(card.hasPrefix("""
            ---
            base_model:
            - models/llama-ft-a
            - models/llama-ft-b
            library_name: transformers
            tags:
            - merge
            - mergekit
            - mergegraph
            ---
            # \((out as NSString).lastPathComponent)

            """), card)
        XCTAssertTrue(card.contains("merged using the `linear` merge method (weighted average"), card)
        XCTAssertTrue(card.contains("* models/llama-ft-a\n* models/llama-ft-b\n"), card)
        XCTAssertTrue(card.contains("```yaml\n" + config), card)
        XCTAssertTrue(card.contains("39 tensors written (177.1 KiB in 1 shard), 354.2 KiB read from the inputs, predicted peak memory"), card)
        XCTAssertEqual(try String(contentsOfFile: out + "/mergekit_config.yml", encoding: .utf8), config)
        let bare = Fixtures.temporaryDirectory("cli-run-bare")
        defer { try? FileManager.default.removeItem(atPath: bare) }
        XCTAssertEqual(try run(["run", Fixtures.caseConfig("linear"), bare, "--overwrite", "--no-write-model-card"]).status, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: bare).sorted(), ["config.json", "model.safetensors"])
    }

    func testPlanPrintsWithoutWriting() throws {
        let result = try run(["plan", Fixtures.caseConfig("passthrough_frankenmerge")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("load @m1 \"model.layers.3.mlp.up_proj.weight\""), result.stdout)
        XCTAssertTrue(result.stdout.contains("out \"model.layers.5.mlp.up_proj.weight\" shard 1"), result.stdout)
    }

    func testSmallShardSizeWritesShardsAndIndex() throws {
        let out = Fixtures.temporaryDirectory("cli-shards")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try run(["run", Fixtures.caseConfig("linear"), out, "--out-shard-size", "60K", "--overwrite"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(files, ["README.md", "config.json", "mergekit_config.yml"]
                       + (1...4).map { "model-0000\($0)-of-00004.safetensors" } + ["model.safetensors.index.json"])
        XCTAssertEqual(try CheckpointComparison.problems(actual: out, expected: Fixtures.expected("linear")), [])
    }

    func testTokenizerFilesAreCopiedUnlessDisabled() throws {
        let source = Fixtures.temporaryDirectory("tok-src")
        defer { try? FileManager.default.removeItem(atPath: source) }
        for file in ["model.safetensors", "config.json"] {
            try FileManager.default.copyItem(atPath: "\(Fixtures.conformance)/models/llama-ft-a/\(file)", toPath: "\(source)/\(file)")
        }
        try "{}".write(toFile: "\(source)/tokenizer.json", atomically: true, encoding: .utf8)
        try "{}".write(toFile: "\(source)/tokenizer_config.json", atomically: true, encoding: .utf8)
        let (dir, name) = try scratchConfig("""
            models:
              - model: \(source)
                parameters: {weight: 1}
            merge_method: linear
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(try run(["run", name, "a", "--no-write-model-card"], in: dir).status, 0)
        XCTAssertEqual(try run(["run", name, "b", "--no-copy-tokenizer", "--no-write-model-card"], in: dir).status, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/a").sorted(),
                       ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/b").sorted(),
                       ["config.json", "model.safetensors"])
    }

    func testYAMLSyntaxErrorNamesPosition() throws {
        try assertFails("models:\n  - model: [unclosed\nmerge_method: linear\n", containing: ["c.yml:", "error:"])
    }

    func testMissingModelPath() throws {
        try assertFails("""
            models:
              - model: models/llama-ft-a
                parameters: {weight: 1}
              - model: models/no-such-model
                parameters: {weight: 1}
            merge_method: linear
            """, containing: ["c.yml:4:12:", "models/no-such-model", "no such directory"])
    }

    func testUnknownMethodIsNamed() throws {
        try assertFails("models:\n  - model: models/llama-ft-a\nmerge_method: frobnicate\n",
                        containing: ["c.yml:3:15: unknown merge method 'frobnicate'"])
    }

    func testShapeMismatchNamesBothModelsAndTensor() throws {
        try assertFails("""
            models:
              - model: models/llama-ft-a
                parameters: {weight: 1}
              - model: models/gpt2-a
                parameters: {weight: 1}
            merge_method: linear
            """, containing: ["missing from model 'models/gpt2-a'"])
    }

    func testTruncatedSafetensorsIsAClearError() throws {
        let broken = Fixtures.temporaryDirectory("broken")
        defer { try? FileManager.default.removeItem(atPath: broken) }
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Fixtures.conformance)/models/llama-ft-b/model.safetensors"))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: "\(broken)/model.safetensors"))
        try assertFails("""
            models:
              - model: models/llama-ft-a
                parameters: {weight: 1}
              - model: \(broken)
                parameters: {weight: 1}
            merge_method: linear
            """, containing: ["c.yml:4:12:", "model.safetensors"])
    }

    func testExistingOutputIsNotClobberedWithoutOverwrite() throws {
        let (dir, name) = try scratchConfig("models:\n  - model: models/llama-ft-a\n    parameters: {weight: 1}\nmerge_method: linear\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/out", withIntermediateDirectories: true)
        try "keep".write(toFile: "\(dir)/out/notes.txt", atomically: true, encoding: .utf8)
        let result = try run(["run", name, "out"], in: dir)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("--overwrite"), result.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out"), ["notes.txt"])
    }

    func testMaxMemoryAcceptsUnitsAndRejectsNonsense() throws {
        for size in ["512MiB", "2GiB", "1.5G", "1000000000", "64mb"] {
            let result = try run(["plan", Fixtures.caseConfig("linear"), "--max-memory", size])
            XCTAssertEqual(result.status, 0, "\(size): \(result.stderr)")
            XCTAssertTrue(result.stdout.contains("// memory: budget "), result.stdout)
        }
        let twoGiB = try run(["plan", Fixtures.caseConfig("linear"), "--max-memory", "2GiB"])
        XCTAssertTrue(twoGiB.stdout.contains("// memory: budget 2.0 GiB; predicted peak "), twoGiB.stdout)
        for bad in ["lots", "12XB", "-5MiB", ""] {
            let result = try run(["plan", Fixtures.caseConfig("linear"), "--max-memory", bad])
            XCTAssertNotEqual(result.status, 0, bad)
            XCTAssertTrue(result.stderr.contains("--max-memory"), result.stderr)
        }
    }

    func testTooSmallABudgetFailsBeforeWritingAnything() throws {
        let out = Fixtures.temporaryDirectory("cli-budget") + "/out"
        let result = try run(["run", Fixtures.caseConfig("ties"), out, "--max-memory", "1KiB"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("error: --max-memory 1.0 KiB (1024 bytes) is too small"), result.stderr)
        XCTAssertTrue(result.stderr.contains("the smallest workable budget is "), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let tiny = try run(["run", Fixtures.caseConfig("ties"), out, "--max-memory", "1"])
        XCTAssertEqual(tiny.status, 1)
        XCTAssertTrue(tiny.stderr.contains("error: --max-memory 1 byte is too small"), tiny.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testProgressLinesUnlessQuiet() throws {
        let out = Fixtures.temporaryDirectory("cli-progress")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let shown = try run(["run", Fixtures.caseConfig("linear"), out + "/a"])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertTrue(shown.stderr.contains("100%  39/39 tensors"), shown.stderr)
        XCTAssertFalse(shown.stderr.contains("\u{1B}["), "no terminal control codes when not on a terminal")
        XCTAssertFalse(shown.stderr.contains("[#"), "no bar in a log")
        let quiet = try run(["run", Fixtures.caseConfig("linear"), out + "/b", "--quiet"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertEqual(quiet.stderr, "")
        let verbose = try run(["run", Fixtures.caseConfig("linear"), out + "/c", "--quiet", "--verbose"])
        XCTAssertTrue(verbose.stderr.contains("wrote model.safetensors (39 tensors)"), verbose.stderr)
        XCTAssertTrue(verbose.stderr.contains("peak memory held: "), verbose.stderr)
    }

    /// `mergegraph methods` prints one line per method; `--markdown` prints the README's table.
    func testMethodsCommandPrintsTheDeclarations() throws {
        let lines = try run(["methods"])
        XCTAssertEqual(lines.status, 0, lines.stderr)
        XCTAssertEqual(lines.stdout, MethodRegistry.listing())
        XCTAssertTrue(lines.stdout.contains("\nslerp: t (required, in [0, 1]); needs base_model; exactly 2 models (base included)\n"),
                      lines.stdout)
        let table = try run(["methods", "--markdown"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertEqual(table.stdout, MethodRegistry.markdownTable())
        XCTAssertTrue(table.stdout.hasPrefix("| method | parameters | inputs | what it does | follows |\n"), table.stdout)
    }
}

/// mergekit command lines as people type them.
extension CommandLineTests {
    /// The seed tutorial's `mergekit-yaml config.yaml merge --copy-tokenizer --allow-crimes --out-shard-size 1B
    /// --lazy-unpickle`, with `mergegraph run` in place of `mergekit-yaml`: it runs, notes the options that change
    /// nothing, and writes the same bytes as a plain run.
    func testTheTutorialsCommandLineRunsUnchanged() throws {
        let out = Fixtures.temporaryDirectory("tutorial")
        let plain = Fixtures.temporaryDirectory("plain")
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: plain)
        }
        let config = Fixtures.caseConfig("linear")
        let result = try run(["run", config, out, "--copy-tokenizer", "--allow-crimes", "--out-shard-size", "1B",
                                  "--lazy-unpickle", "--overwrite", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("note: --allow-crimes:"), result.stderr)
        XCTAssertTrue(result.stderr.contains("note: --lazy-unpickle:"), result.stderr)
        XCTAssertEqual(try run(["run", config, plain, "--overwrite", "--quiet"]).status, 0)
        XCTAssertEqual(FileManager.default.contents(atPath: out + "/model.safetensors"),
                       FileManager.default.contents(atPath: plain + "/model.safetensors"))
    }

    /// Every other mergekit-yaml option is accepted; GPU options run on the CPU with one note.
    func testEveryMergekitOptionIsAccepted() throws {
        let out = Fixtures.temporaryDirectory("options")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try run([
            "run", Fixtures.caseConfig("linear"), out, "--overwrite", "--quiet",
            "--no-allow-crimes", "--no-lazy-unpickle", "--low-cpu-memory", "--write-model-card", "--no-trust-remote-code",
            "--clone-tensors", "--safe-serialization", "--async-write", "--write-threads", "2", "--transformers-cache", "/tmp",
            "--lora-merge-cache", "/tmp", "--lora-merge-dtype", "bfloat16", "--cuda", "--device", "cuda", "--read-to-gpu",
            "--multi-gpu", "--gpu-rich", "--random-seed", "3", "-j", "1", "--num-threads", "1", "-v", "-v",
            "--no-copy-tokenizer", "--unsafe-truncate-embeddings",
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr.components(separatedBy: "note: GPU options").count, 2, "one note for all GPU options")
        XCTAssertTrue(result.stderr.contains("peak memory held"), "-v is --verbose")
    }

    /// A misspelt key's warning is printed even when compiling then fails (here because the vocabularies differ,
    /// which the misspelt `tokenizer_source` would have handled).
    func testKeyWarningsComeBeforeALaterError() throws {
        let (dir, _) = try mixedVocabularyConfig("tokenzer_source: union")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try Binary.run(["run", "c.yml", "out", "--quiet"], in: dir)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("did you mean 'tokenizer_source'?"), result.stderr)
        XCTAssertTrue(result.stderr.contains("the vocabularies differ"), result.stderr)
    }

    /// A tokenizer source that is no keyword, no input and no folder is named with a guess, not read as a folder
    /// without tokenizer files.
    func testMisspeltTokenizerSourceIsNamedWithAGuess() throws {
        for (source, guess) in [("unoin", "union"), ("bsae", "base"), ("\(Fixtures.conformance)/models/llama-ft-b-to",
                                                                        "\(Fixtures.conformance)/models/llama-ft-b-tok")] {
            let (dir, _) = try mixedVocabularyConfig("tokenizer_source: \(source)")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let result = try Binary.run(["run", "c.yml", "out", "--quiet"], in: dir)
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("c.yml:6:19: tokenizer source '\(source)' is neither 'union', 'base', "
                                                 + "an input model nor a model folder (did you mean '\(guess)'?)"),
                          result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/out"))
        }
    }

    /// `run` is the default command, so a misspelt command name would be read as a config path: when no such file
    /// exists and the name is close to a command's, the error says which command was meant.
    func testMisspeltCommandIsNamed() throws {
        let dir = Fixtures.temporaryDirectory("command-typo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (typo, command) in [("pln", "plan"), ("finalise", "finalize"), ("methds", "methods")] {
            // With the command's own arguments too, which `run` would refuse as one too many.
            for arguments in [[typo, "out"], [typo, "c.yml", "out"], [typo]] {
                let result = try Binary.run(arguments, in: dir)
                XCTAssertEqual(result.status, 1, result.stderr)
                XCTAssertTrue(result.stderr.contains("\(typo): no such config file (did you mean the '\(command)' command?)"),
                              result.stderr)
            }
        }
        // A path is never taken for a command.
        let path = try Binary.run(["./pln", "out"], in: dir)
        XCTAssertEqual(path.status, 1)
        XCTAssertFalse(path.stderr.contains("did you mean"), path.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/out"))
    }

    /// A parameter the merge method does not use (a misspelt `density` keeps mergekit's default) is a warning, and
    /// an error with `--strict`, as the keys the parser finds are.
    func testStrictRejectsAnUnusedParameter() throws {
        let (dir, _) = try scratchConfig("""
            models:
              - model: \(Fixtures.conformance)/models/llama-ft-a
                parameters: {desnity: 0.5, weight: 0.5}
            merge_method: ties
            base_model: \(Fixtures.conformance)/models/llama-base
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lenient = try Binary.run(["run", "c.yml", "lenient", "--quiet"], in: dir)
        XCTAssertEqual(lenient.status, 0, lenient.stderr)
        XCTAssertTrue(lenient.stderr.contains("c.yml:3:18: warning: parameter 'desnity' is not used by merge method 'ties' "
                                              + "(did you mean 'density'?)"), lenient.stderr)
        let strict = try Binary.run(["run", "c.yml", "strict", "--quiet", "--strict"], in: dir)
        XCTAssertEqual(strict.status, 1, strict.stderr)
        XCTAssertTrue(strict.stderr.contains("error: c.yml:3:18: parameter 'desnity' is not used by merge method 'ties' "
                                             + "(did you mean 'density'?); --strict makes this an error"), strict.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/strict"))
    }

    /// A chain input that is no stage and no folder but close to a stage's name is named as a misspelt stage,
    /// rather than looked up on the Hub.
    func testMisspeltStageIsNamed() throws {
        let chain = try String(contentsOfFile: "\(Fixtures.conformance)/cases/ties_then_slerp/config.yml", encoding: .utf8)
            .replacingOccurrences(of: "- model: ties-ab\n", with: "- model: ties-abx\n")
        XCTAssertTrue(chain.contains("ties-abx"))
        let (dir, _) = try scratchConfig(chain)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try Binary.run(["plan", "c.yml"], in: dir)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("no stage named 'ties-abx' and no model folder of that name "
                                             + "(did you mean the stage 'ties-ab'?)"), result.stderr)
    }

    /// A missing required parameter points at the misspelt key that was meant to set it.
    func testMissingParameterPointsAtItsMisspelling() throws {
        let (dir, _) = try scratchConfig("""
            models:
              - model: \(Fixtures.conformance)/models/llama-ft-a
                parameters: {wieght: 0.5}
            merge_method: linear
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try Binary.run(["plan", "c.yml"], in: dir)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("missing required parameter 'weight'"), result.stderr)
        XCTAssertTrue(result.stderr.contains("; is 'wieght' (line 3, column 18) a misspelling of it?"), result.stderr)
    }
}
