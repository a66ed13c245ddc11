import Checkpoint
import Foundation
import XCTest

/// The tokenizer cases (`Tests/Fixtures/tokenizer/cases`, outputs of mergekit 0.1.5 with transformers 5.24):
/// `tokenizer_source` base, a model and union (WordLevel and Llama-style BPE tokenizers), the `tokenizer:` section
/// with every kind of token source, a forced token, a new token and padding, and `chat_template` (auto with inputs
/// that disagree, a name). Tensors and `config.json` pass compare.py's rules; the tokenizer files are mergekit's,
/// byte for byte.
final class TokenizerCaseTests: XCTestCase {
    /// A task-arithmetic merge of the conformance models with 130 and 128 rows over `llama-base-tok` (run from the
    /// tokenizer fixtures' folder), without a tokenizer setting.
    static let vocabularyMerge = """
        models:
          - model: ../conformance/models/llama-ft-a-vocab130
            parameters: {weight: 0.5}
          - model: ../conformance/models/llama-ft-b-tok
            parameters: {weight: 0.5}
        merge_method: task_arithmetic
        base_model: ../conformance/models/llama-base-tok

        """

    func testEveryTokenizerCaseMatchesMergekit() throws {
        let names = Fixtures.tokenizerCaseNames
        XCTAssertEqual(names, ["tok_base", "tok_bpe_union", "tok_chat_auto", "tok_model", "tok_tokens", "tok_union_chatml"])
        for name in names {
            let out = Fixtures.temporaryDirectory(name)
            defer { try? FileManager.default.removeItem(atPath: out) }
            try Fixtures.merge(case: name, into: out, in: Fixtures.tokenizer)
            let expected = Fixtures.expected(name, in: Fixtures.tokenizer)
            XCTAssertEqual(try CheckpointComparison.problems(actual: out, expected: expected), [], name)
            for file in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
                let theirs = FileManager.default.contents(atPath: "\(expected)/\(file)")
                XCTAssertEqual(FileManager.default.contents(atPath: "\(out)/\(file)"), theirs, "\(name): \(file)")
            }
        }
    }

    /// A built vocabulary is written whatever `--no-copy-tokenizer` says (mergekit saves it in any case); a donor's
    /// tokenizer re-saved for `chat_template` is a copy, left out with it. `generation_config.json` comes from the
    /// first model (there is no base) beside the tokenizer files.
    func testTokenizerFilesAndCopyOption() throws {
        let dir = Fixtures.temporaryDirectory("copy-option")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, options, expected) in [
            ("tok_chat_auto", [String](), ["chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
                                           "tokenizer.json", "tokenizer_config.json"]),
            ("tok_chat_auto", ["--no-copy-tokenizer"], ["config.json", "model.safetensors"]),
            ("tok_union_chatml", ["--no-copy-tokenizer"], ["chat_template.jinja", "config.json", "model.safetensors",
                                                           "tokenizer.json", "tokenizer_config.json"]),
        ] {
            let out = "\(dir)/\(name)\(options.count)"
            let result = try Binary.run(["run", Fixtures.caseConfig(name), out, "--quiet", "--no-write-model-card"] + options,
                                        in: Fixtures.tokenizer)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(), expected, "\(name) \(options)")
        }
        XCTAssertEqual(FileManager.default.contents(atPath: "\(dir)/tok_chat_auto0/generation_config.json"),
                       FileManager.default.contents(atPath: "\(Fixtures.tokenizer)/models/llama-chatml-a/generation_config.json"))
    }

    /// `tok_tokens`: 131 tokens padded to 192 rows; `config.json` says so.
    func testPaddedVocabularySize() throws {
        let out = Fixtures.temporaryDirectory("pad")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (plan, _) = try Fixtures.merge(case: "tok_tokens", into: out, in: Fixtures.tokenizer)
        let config = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))))
        XCTAssertEqual(config["vocab_size"]?.intValue, 192)
        let dump = plan.dump()
        XCTAssertTrue(dump.contains("vocab_gather(192 rows: 129 from @m0, 1 from @m1, 1 from @m2, 61 padding)"), dump)
        XCTAssertTrue(dump.contains("1 statistics sweep"), dump)
    }

    /// `plan` reports how the vocabularies differ: without a tokenizer setting, relative to the base model's tokenizer
    /// (what merging rows by index means), and then fails with mergekit's error and its two ways forward.
    func testPlanReportsDifferingVocabulariesBeforeTheError() throws {
        let dir = Fixtures.temporaryDirectory("report")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/config.yml"
        try """
            models:
              - model: models/llama-ft-a-vocab130
                parameters: {weight: 0.5}
              - model: models/llama-ft-b-tok
                parameters: {weight: 0.5}
            merge_method: ties
            base_model: models/llama-base-tok
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try Binary.run(["plan", config])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.hasPrefix("""
            // vocabulary report: the inputs' vocabularies differ, and no tokenizer_source aligns them: mergekit merges \
            embedding rows by index, as if every model had the tokens of 'models/llama-base-tok' (128)
            //   'models/llama-base-tok': 128 tokens, 128 rows; every output token at its own id
            //   'models/llama-ft-a-vocab130': 130 tokens, 130 rows; 2 tokens ("<|im_start|>", "<|im_end|>") not in the \
            output (rows dropped)
            """), result.stdout)
        XCTAssertTrue(result.stderr.contains("the vocabularies differ"), result.stderr)
        XCTAssertTrue(result.stderr.contains("--unsafe-truncate-embeddings"), result.stderr)
        // With a setting, the report describes the output vocabulary and the plan follows.
        let union = try Binary.run(["plan", "cases/rw_vocab_union/config.yml"])
        XCTAssertEqual(union.status, 0, union.stderr)
        XCTAssertTrue(union.stdout.hasPrefix("// vocabulary report: the output vocabulary (tokenizer source union) has 130 tokens, 130 rows\n"))
        XCTAssertTrue(union.stdout.contains("'models/llama-ft-b-tok': 128 tokens, 128 rows; lacks 2 output tokens"))
        XCTAssertTrue(union.stdout.contains("// mergegraph plan"))
        // Inputs whose vocabularies agree give no report.
        XCTAssertFalse(try Binary.run(["plan", "cases/linear/config.yml"]).stdout.contains("vocabulary report"))
    }

    /// A model whose embedding has rows past its tokenizer's vocabulary (Qwen2: 152064 rows, 151665 tokens): the report
    /// names them padding, and a union keeps the tokenizer's tokens only.
    func testPaddingRowsPastTheTokenizer() throws {
        let dir = Fixtures.temporaryDirectory("padded")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let models = Fixtures.conformance + "/models"
        try FileManager.default.createDirectory(atPath: dir + "/padded", withIntermediateDirectories: true)
        for (name, from) in [("model.safetensors", "llama-ft-a-vocab130"), ("config.json", "llama-ft-a-vocab130"),
                             ("tokenizer.json", "llama-base-tok"), ("tokenizer_config.json", "llama-base-tok")] {
            try FileManager.default.copyItem(atPath: "\(models)/\(from)/\(name)", toPath: "\(dir)/padded/\(name)")
        }
        let config = """
            models:
              - model: \(dir)/padded
                parameters: {weight: 0.5}
              - model: models/llama-ft-b-tok
                parameters: {weight: 0.5}
            merge_method: linear
            base_model: models/llama-ft-b-tok
            tokenizer_source: union
            """
        try config.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        let result = try Binary.run(["plan", dir + "/config.yml"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("padded': 128 tokens, 130 rows; rows 128..<130 are padding past its tokenizer's vocabulary"),
                      result.stdout)
        XCTAssertTrue(result.stdout.contains("tensor \"model.embed_tokens.weight\" : f32[128,32]"), result.stdout)
    }

    /// Token settings mergekit cannot honour stop the compile at the setting, naming the token and the model.
    func testTokenSettingErrors() throws {
        let head = Self.vocabularyMerge + """
            tokenizer:
              tokens:

            """
        func error(_ tokens: String) -> String {
            do {
                _ = try Fixtures.compile(head + tokens, file: "t.yml", in: Fixtures.tokenizer)
                return "compiled"
            } catch {
                return String(describing: error)
            }
        }
        XCTAssertEqual(error("    <|im_start|>: {}\n"), "t.yml:10:5: token \"<|im_start|>\" has no 'source', but "
                       + "'../conformance/models/llama-ft-b-tok', '../conformance/models/llama-base-tok' lack it; give it a "
                       + "source (a model, {kind: zero} or {kind: model_token, …})")
        XCTAssertTrue(error("    <|im_start|>: {source: ../conformance/models/llama-ft-b-tok}\n")
            .hasSuffix("takes its row from model '../conformance/models/llama-ft-b-tok', which does not have that token"))
        XCTAssertTrue(error("    <x>: {source: models/llama-bpe-m1}\n")
            .contains("takes its row from model 'models/llama-bpe-m1', but tensor 'model.embed_tokens.weight' is not merged from that model"))
        XCTAssertTrue(error("    <x>: {source: {kind: model_token, model: ../conformance/models/llama-base-tok, token: nope}}\n")
            .contains("token \"nope\" is not in the vocabulary of model '../conformance/models/llama-base-tok'"))
        XCTAssertTrue(error("    <x>: {source: {kind: model_token, model: ../conformance/models/llama-base-tok, token_id: 128}}\n")
            .contains("token id 128 is outside the 128 rows"))
    }

    /// In a chain, a stage's built vocabulary goes on to the stages that read it (its rows, `vocab_size` and tokenizer
    /// files); a tokenizer setting in a stage that merges another stage's output is not implemented (that stage's
    /// tokenizer exists only once the chain is written).
    func testChains() throws {
        let first = "name: first\n" + Self.vocabularyMerge + """
            tokenizer_source: union
            dtype: float32
            ---

            """
        let out = Fixtures.temporaryDirectory("chain")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (plan, _) = try Fixtures.merge(configText: first + "models: [{model: first}]\nmerge_method: passthrough\n",
                                           into: out, in: Fixtures.tokenizer)
        XCTAssertEqual(plan.targets[0].tokenizer?.required, false)
        let union = Fixtures.expected("rw_vocab_union")
        XCTAssertEqual(FileManager.default.contents(atPath: out + "/tokenizer.json"), FileManager.default.contents(atPath: union + "/tokenizer.json"))
        let config = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))))
        XCTAssertEqual(config["vocab_size"]?.intValue, 130)
        XCTAssertThrowsError(try Fixtures.compile(first + """
            models:
              - model: first
              - model: ../conformance/models/llama-base-tok
            merge_method: slerp
            base_model: ../conformance/models/llama-base-tok
            parameters: {t: 0.5}
            tokenizer_source: union
            """, file: "t.yml", in: Fixtures.tokenizer)) { error in
            XCTAssertTrue("\(error)".hasPrefix("t.yml:18:1: not implemented: a tokenizer setting in a merge of another stage's output ('first')"), "\(error)")
        }
    }
}
