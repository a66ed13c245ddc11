import Checkpoint
import Foundation
import Planner
import XCTest

/// Runs the mergekit 0.1.5 reference cases shipped in Tests/Fixtures/conformance.
final class ConformanceTests: XCTestCase {
    /// Cases whose merge method compiles today.
    static let implemented = [
        "linear", "linear_unnormalized_sharded", "slerp_gradient", "slerp_bf16", "task_arithmetic",
        "model_stock", "passthrough_frankenmerge", "passthrough_gpt2_stack", "ties", "breadcrumbs_ties",
        "ties_then_slerp", "nearswap", "sce", "nuslerp", "multislerp", "karcher", "arcee_fusion",
        "rw_pytorch_bin", "rw_f64_input", "rw_bool_buffers", "rw_ties_fp16_cut", "rw_weight_rounding_bf16",
        "rw_gpt2_hub_names", "rw_lora", "rw_vocab_union", "rw_chat_template",
    ]

    /// Cases that do not match mergekit yet, with what is missing: `PendingCases.txt` beside this file (also read
    /// by scripts/test.sh, which skips them).
    static let pending: [String] = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("PendingCases.txt").path
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains(":") }
            .map { String($0[..<$0.firstIndex(of: ":")!]) }
    }()

    func testEveryShippedCaseIsImplementedOrPending() throws {
        let cases = try FileManager.default.contentsOfDirectory(atPath: "\(Fixtures.conformance)/cases").sorted()
        XCTAssertEqual(cases, (Self.implemented + Self.pending).sorted())
    }

    func testImplementedCasesMatchMergekit() throws {
        for name in Self.implemented {
            let out = Fixtures.temporaryDirectory(name)
            defer { try? FileManager.default.removeItem(atPath: out) }
            try Fixtures.merge(case: name, into: out)
            let problems = try CheckpointComparison.problems(actual: out, expected: Fixtures.expected(name))
            XCTAssertEqual(problems, [], "case \(name)")
        }
    }

    /// Where mergekit wrote tokenizer files (`tokenizer_source`, `chat_template`), ours describe the same tokenizer:
    /// `tokenizer.json`'s model vocabulary and added tokens are mergekit's, `tokenizer_config.json` is the same JSON,
    /// and the chat template is the same text (so it renders every conversation as mergekit's does). (Cases without a
    /// tokenizer setting whose models have no tokenizer files, `rw_bool_buffers` and `rw_gpt2_hub_names`, hold the
    /// empty-vocabulary GPT-2 tokenizer transformers 5 makes up from `model_type`; we write none:
    /// docs/mergekit-differences.md.)
    func testTokenizerFilesMatchMergekit() throws {
        func json(_ path: String) throws -> JSONValue { try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path)))) }
        var checked = 0
        for name in Self.implemented {
            let expected = Fixtures.expected(name)
            let config = try String(contentsOfFile: "\(Fixtures.conformance)/\(Fixtures.caseConfig(name))", encoding: .utf8)
            guard config.contains("\ntokenizer") || config.contains("\nchat_template") else { continue }
            checked += 1
            let out = Fixtures.temporaryDirectory(name)
            defer { try? FileManager.default.removeItem(atPath: out) }
            try Fixtures.merge(case: name, into: out)
            let (ours, theirs) = (try json(out + "/tokenizer.json"), try json(expected + "/tokenizer.json"))
            XCTAssertEqual(ours["model"]?["vocab"], theirs["model"]?["vocab"], name)
            XCTAssertEqual(ours["added_tokens"], theirs["added_tokens"], name)
            XCTAssertEqual(try json(out + "/tokenizer_config.json"), try json(expected + "/tokenizer_config.json"), name)
            let template = "/chat_template.jinja"
            XCTAssertEqual(FileManager.default.contents(atPath: out + template),
                           FileManager.default.contents(atPath: expected + template), name)
        }
        XCTAssertEqual(checked, 2)
    }

    /// TIES follows mergekit's f32 operation order (weights rounded to f32, sums in model order), so on the f32
    /// models of the `ties` case every element equals mergekit's, not just within compare.py's tolerance.
    func testTiesIsBitIdenticalToMergekit() throws {
        let out = Fixtures.temporaryDirectory("ties-bits")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try Fixtures.merge(case: "ties", into: out)
        let actual = try CheckpointComparison.tensors(in: out)
        let expected = try CheckpointComparison.tensors(in: Fixtures.expected("ties"))
        XCTAssertEqual(Set(actual.keys), Set(expected.keys))
        for (name, (type, values)) in expected {
            XCTAssertEqual(type.dtype, .f32, name)
            XCTAssertEqual(actual[name]?.1.map(\.bitPattern), values.map(\.bitPattern), name)
        }
    }

    /// `rw_tied_lm_head` has no base model, so mergekit 0.1.5 took `config.json` from whichever input its set of
    /// referenced models iterated first (it varies with PYTHONHASHSEED; docs/mergekit-differences.md). The tensors
    /// match, the tied input's embedding standing in for its missing head; the config is the first model's.
    func testTiedHeadTensorsMatch() throws {
        let out = Fixtures.temporaryDirectory("tied")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try Fixtures.merge(case: "rw_tied_lm_head", into: out)
        let problems = try CheckpointComparison.problems(actual: out, expected: Fixtures.expected("rw_tied_lm_head"))
        XCTAssertEqual(problems, ["config.json[tie_word_embeddings]: got false"])
        let config = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))))
        let first = try JSONParser.parse(Array(try Data(contentsOf: URL(
            fileURLWithPath: Fixtures.conformance + "/models/llama-ft-a/config.json"))))
        XCTAssertEqual(config["tie_word_embeddings"]?.boolValue, first["tie_word_embeddings"]?.boolValue)
    }

    /// A pending case still fails (an error, or tensors compare.py would reject); one that starts to match must move
    /// to `implemented`, where it is checked for good.
    func testPendingCasesStillDiffer() throws {
        XCTAssertFalse(Self.pending.isEmpty || Self.pending.contains { Self.implemented.contains($0) })
        for name in Self.pending {
            let out = Fixtures.temporaryDirectory(name)
            defer { try? FileManager.default.removeItem(atPath: out) }
            guard (try? Fixtures.merge(case: name, into: out)) != nil else { continue }
            let problems = (try? CheckpointComparison.problems(actual: out, expected: Fixtures.expected(name))) ?? ["unreadable"]
            XCTAssertFalse(problems.isEmpty, "\(name) now matches mergekit: move it from PendingCases.txt to implemented")
        }
    }

    /// A method mergekit 0.1.5 does not have fails to compile with a clear message.
    func testUnknownMethodIsNamed() throws {
        for method in ["frobnicate"] {
            let config = """
                models:
                  - model: models/llama-ft-a
                    parameters: {weight: 1, density: 0.5}
                merge_method: \(method)
                base_model: models/llama-base
                """
            XCTAssertThrowsError(try Fixtures.compile(config, file: "p.yml"), method) { error in
                XCTAssertEqual("\(error)", "p.yml:4:15: unknown merge method '\(method)' (`mergegraph methods` lists them)")
            }
        }
    }
}
