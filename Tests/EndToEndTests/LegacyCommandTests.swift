import Foundation
import IR
import XCTest

/// `mergegraph legacy` and `mergegraph bakllama` write the same bytes as `mergegraph run` on configs written by hand
/// for the same command lines and bakllama configs (Tests/Fixtures/legacy).
final class LegacyCommandTests: XCTestCase {
    /// Runs `arguments` (writing to a fresh OUT) and `run CONFIG` (to another), and asserts equal tensor files.
    func assertSameBytes(_ arguments: [String], asConfig config: String,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let ours = Fixtures.temporaryDirectory("legacy"), reference = Fixtures.temporaryDirectory("legacy-ref")
        defer {
            try? FileManager.default.removeItem(atPath: ours)
            try? FileManager.default.removeItem(atPath: reference)
        }
        let translated = try Binary.run(arguments + [ours, "--overwrite", "--quiet"])
        XCTAssertEqual(translated.status, 0, translated.stderr, file: file, line: line)
        let direct = try Binary.run(["run", config, reference, "--overwrite", "--quiet"])
        XCTAssertEqual(direct.status, 0, direct.stderr, file: file, line: line)
        let a = try Fixtures.shardBytes("\(ours)/model.safetensors")
        let b = try Fixtures.shardBytes("\(reference)/model.safetensors")
        XCTAssertGreaterThan(a.count, 100_000, file: file, line: line)
        XCTAssertEqual(a, b, "\(arguments.joined(separator: " ")) and run \(config) differ", file: file, line: line)
    }

    static let tiesExample = ["legacy", "--base-model", "models/llama-base", "--cuda",
                              "--merge", "models/llama-ft-a", "--weight", "0.3", "--density", "0.5",
                              "--merge", "models/llama-ft-b", "--weight", "0.5", "--density", "0.5"]
    static let linearExample = ["legacy", "--cuda", "--method", "linear", "--merge", "models/llama-ft-a", "--weight", "0.6",
                                "--merge", "models/llama-ft-b", "--weight", "0.2"]

    func testReadmeTiesExample() throws {
        try assertSameBytes(Self.tiesExample, asConfig: Binary.legacyFixture("ties.yml"))
    }

    func testReadmeLinearExample() throws {
        try assertSameBytes(Self.linearExample, asConfig: Binary.legacyFixture("linear.yml"))
    }

    func testReadmeSlerpLayerGradientExample() throws {
        try assertSameBytes(["legacy", "--cuda", "--method", "slerp", "--base-model", "models/llama-base",
                             "--merge", "models/llama-ft-a", "--layer-gradient", "[0, 0.3, 0.7, 0, 0.1, 1.0]"],
                            asConfig: Binary.legacyFixture("slerp_gradient.yml"))
    }

    /// The i-th --weight goes to the i-th model wherever it is written, as click collects mergekit-legacy's options.
    func testWeightsAndDensitiesAreCollectedInOrderNotByPosition() throws {
        try assertSameBytes(["legacy", "--base-model", "models/llama-base", "--weight", "0.3", "--weight", "0.5",
                             "--merge", "models/llama-ft-a", "--density", "0.5", "--merge", "models/llama-ft-b"],
                            asConfig: Binary.legacyFixture("ties.yml"))
    }

    /// --print-yaml prints what mergekit 0.1.5's mergekit-legacy prints for the same arguments, byte for byte.
    func testPrintYAMLIsMergekitLegacys() throws {
        for (example, name) in [(Self.tiesExample, "ties"), (Self.linearExample, "linear")] {
            let result = try Binary.run(example + ["--print-yaml", "--plan-only", "--format", "json"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let expected = try String(contentsOfFile: "\(Fixtures.conformance)/\(Binary.legacyFixture("\(name).mergekit-legacy-print-yaml.txt"))",
                                      encoding: .utf8)
            XCTAssertTrue(result.stdout.hasPrefix(expected + "{"), "expected mergekit-legacy's YAML, got:\n\(result.stdout.prefix(600))")
        }
    }

    func testArgumentProblemsNameTheFlag() throws {
        let cases: [([String], String)] = [
            (["legacy", "out", "--merge", "models/llama-ft-a", "--density", "0.5", "--density", "0.2", "--density", "0.1"],
             "--density: 3 values for 1 models"),
            (["legacy", "out", "--method", "slerp", "--base-model", "models/llama-base", "--merge", "models/llama-ft-a"],
             "--weight: slerp takes exactly one --weight (its t), found 0"),
            (["legacy", "out", "--method", "slerp", "--merge", "models/llama-ft-a", "--weight", "0.5",
              "--layer-gradient", "[0, 1]"], "--weight and --layer-gradient both give slerp's t"),
            (["legacy", "out", "--merge", "models/llama-ft-a", "--layer-gradient", "[0, 1]"],
             "--layer-gradient: only with --method slerp"),
            (["legacy", "out", "--method", "slerp", "--merge", "models/llama-ft-a", "--layer-gradient", "[0.5]"],
             "is not a JSON list of at least two numbers"),
            (["legacy", "out", "--weight", "1"], "--merge: give at least one model"),
            (["legacy", "--merge", "models/llama-ft-a", "--base-model", "models/llama-base"], "missing OUT_DIR"),
            (["legacy", "out", "--merge", "models/llama-ft-a", "--max-memory", "lots"], "--max-memory: 'lots'"),
        ]
        for (arguments, phrase) in cases {
            let result = try Binary.run(arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(phrase), "expected '\(phrase)' in: \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(Fixtures.conformance)/out"))
        }
        // Config problems surface from the compiler at the translated config's position, exit 1.
        let unknown = try Binary.run(["legacy", "out", "--method", "nope", "--merge", "models/llama-ft-a"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("(mergegraph legacy arguments):"), unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("unknown merge method 'nope'"), unknown.stderr)
    }

    func testBakllamaWithDefaultSourcesIsThePassthroughSlices() throws {
        try assertSameBytes(["bakllama", Binary.legacyFixture("bakllama_default.yml")],
                            asConfig: Fixtures.caseConfig("passthrough_frankenmerge"))
    }

    func testBakllamaWithExplicitSources() throws {
        try assertSameBytes(["bakllama", Binary.legacyFixture("bakllama_explicit.yml")],
                            asConfig: Binary.legacyFixture("bakllama_explicit.slices.yml"))
        // And what bakllama.py wrote: the embedding of embedding_source, the final norm and head of lm_head_source,
        // each slice's layers renumbered from 0, down_proj scaled.
        let out = Fixtures.temporaryDirectory("bakllama")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try Binary.run(["bakllama", Binary.legacyFixture("bakllama_explicit.yml"), out, "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let merged = try CheckpointComparison.tensors(in: out)
        func model(_ name: String) throws -> [String: (TensorType, [Float])] {
            try CheckpointComparison.tensors(in: "\(Fixtures.conformance)/models/\(name)")
        }
        let a = try model("llama-ft-a"), b = try model("llama-ft-b"), c = try model("llama-ft-c"), d = try model("llama-ft-d")
        XCTAssertEqual(merged["model.embed_tokens.weight"]?.1, b["model.embed_tokens.weight"]?.1)
        XCTAssertEqual(merged["model.norm.weight"]?.1, d["model.norm.weight"]?.1)
        XCTAssertEqual(merged["lm_head.weight"]?.1, d["lm_head.weight"]?.1)
        XCTAssertEqual(merged["model.layers.1.self_attn.q_proj.weight"]?.1, a["model.layers.1.self_attn.q_proj.weight"]?.1)
        XCTAssertEqual(merged["model.layers.0.mlp.down_proj.weight"]?.1, a["model.layers.0.mlp.down_proj.weight"]?.1.map { $0 * 0.5 })
        XCTAssertEqual(merged["model.layers.2.mlp.down_proj.weight"]?.1, c["model.layers.1.mlp.down_proj.weight"]?.1)
        XCTAssertEqual(merged["model.layers.3.mlp.up_proj.weight"]?.1, c["model.layers.2.mlp.up_proj.weight"]?.1)
        XCTAssertNil(merged["model.layers.4.mlp.up_proj.weight"])
        let config = try String(contentsOfFile: "\(out)/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"num_hidden_layers\": 4"), config)
    }

    func testBakllamaPlanOnlyAndErrors() throws {
        let plan = try Binary.run(["bakllama", Binary.legacyFixture("bakllama_explicit.yml"), "--plan-only"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("out \"model.embed_tokens.weight\" shard 1"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("scale(0.5)"), plan.stdout)

        let dir = Fixtures.temporaryDirectory("bakllama-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let bad = "\(dir)/bad.yml"
        try "layer_slices:\n  - model: models/llama-ft-a\n    start: 3\n    end: 1\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let reversed = try Binary.run(["bakllama", bad, "\(dir)/out"])
        XCTAssertEqual(reversed.status, 1)
        XCTAssertTrue(reversed.stderr.contains("\(bad):2:5: layer slice start 3 is greater than its end 1"), reversed.stderr)
        try "embedding_source: models/llama-ft-a\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let missing = try Binary.run(["bakllama", bad, "\(dir)/out"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("layer_slices"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/out"))
    }
}
