import Checkpoint
import Foundation
import XCTest

/// The output vocabulary as mergekit 0.1.5's `build_tokenizer` (with tokenizers 0.23, transformers 5.24) builds it.
final class TokenizerVocabularyTests: XCTestCase {
    private let models = conformanceModelsDirectory
    private var expectedUnion: String { (conformanceModelsDirectory as NSString).deletingLastPathComponent + "/cases/rw_vocab_union/expected" }

    private func input(_ name: String, vocabSize: Int?) -> TokenizerInput {
        TokenizerInput(name: "models/\(name)", directory: "\(models)/\(name)", vocabSize: vocabSize)
    }

    /// `rw_vocab_union`: the base's 128 tokens keep their ids, the two special tokens of `llama-ft-a-vocab130` follow;
    /// `tokenizer.json` is byte for byte mergekit's.
    func testUnionOfTheFixturesIsMergekitsTokenizer() throws {
        let inputs = [input("llama-ft-a-vocab130", vocabSize: 130), input("llama-ft-b-tok", vocabSize: 128),
                      input("llama-base-tok", vocabSize: 128)]
        let built = try VocabularyBuilder.build(inputs: inputs, base: 2, source: .union, addTokens: [])
        XCTAssertEqual(built.tokens.count, 130)
        XCTAssertEqual(Array(built.tokens[126...]), ["t126", "t127", "<|im_start|>", "<|im_end|>"])
        XCTAssertEqual(built.permutations[0], Array(0..<130))
        XCTAssertEqual(built.permutations[1], Array(0..<128) + [-1, -1])
        XCTAssertEqual(built.permutations[2], Array(0..<128) + [-1, -1])
        XCTAssertEqual(built.configDirectory, "\(models)/llama-base-tok")
        let expected = try String(contentsOfFile: "\(expectedUnion)/tokenizer.json", encoding: .utf8)
        XCTAssertEqual(built.tokenizer.serialized(), expected)
    }

    func testTokenizerConfigIsWhatTransformersWrites() throws {
        let donor = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: "\(models)/llama-base-tok/tokenizer_config.json"))))
        XCTAssertEqual(TokenizerConfigFile.saved(from: donor),
                       try String(contentsOfFile: "\(expectedUnion)/tokenizer_config.json", encoding: .utf8))
        // A transformers 4 configuration, saved by transformers 5.24 (measured).
        let v4 = try JSONParser.parse(Array("""
            {"add_bos_token": true, "add_eos_token": false, "added_tokens_decoder": {"0": {"content": "<unk>"}},
             "additional_special_tokens": ["<s>"], "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
             "chat_template": "{{ x }}", "clean_up_tokenization_spaces": true, "eos_token": "</s>", "legacy": false,
             "name_or_path": "foo/bar", "pad_token": "</s>", "sp_model_kwargs": {}, "tokenizer_class": "PreTrainedTokenizerFast",
             "tokenizer_file": "x", "unk_token": "<unk>"}
            """.utf8))
        XCTAssertEqual(TokenizerConfigFile.saved(from: v4), """
            {
              "backend": "tokenizers",
              "bos_token": "<s>",
              "clean_up_tokenization_spaces": true,
              "eos_token": "</s>",
              "extra_special_tokens": [
                "<s>"
              ],
              "is_local": true,
              "legacy": false,
              "local_files_only": false,
              "pad_token": "</s>",
              "sp_model_kwargs": {},
              "tokenizer_class": "TokenizersBackend",
              "unk_token": "<unk>"
            }

            """)
    }

    /// Three WordLevel tokenizers (measured with mergekit 0.1.5): `b` swaps two of the base's tokens for `x1`, `x2`,
    /// adds `<|im_start|>`, a normalized `foo` and `t5` (a token its model already has, so `tokenizers` gives it id 5);
    /// `c` brings `x2`, `x3`, `<|im_end|>` and `<|im_start|>` with other settings (the first model's win).
    func testUnionFollowsTheAddedVocabularyRules() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = Dictionary(uniqueKeysWithValues: ["<unk>", "<s>", "</s>"].enumerated().map { ($1, $0) }
                                + (3..<128).map { ("t\($0)", $0) })
        var b = base, c = base
        b["t100"] = nil; b["t101"] = nil; b["x1"] = 100; b["x2"] = 101
        c["t120"] = nil; c["t121"] = nil; c["x2"] = 120; c["x3"] = 121
        let std: [(Int, String, Bool, Bool)] = [(0, "<unk>", true, false), (1, "<s>", true, false), (2, "</s>", true, false)]
        try writeWordLevel("\(dir)/base", vocab: base, added: std)
        try writeWordLevel("\(dir)/b", vocab: b, added: std + [(128, "<|im_start|>", true, false), (129, "foo", false, true),
                                                              (130, "t5", true, false)])
        try writeWordLevel("\(dir)/c", vocab: c, added: std + [(128, "<|im_end|>", true, false), (129, "<|im_start|>", false, false)])
        let inputs = [TokenizerInput(name: "base", directory: "\(dir)/base", vocabSize: 128),
                      TokenizerInput(name: "b", directory: "\(dir)/b", vocabSize: 131),
                      TokenizerInput(name: "c", directory: "\(dir)/c", vocabSize: 130)]
        let built = try VocabularyBuilder.build(inputs: inputs, base: 0, source: .union, addTokens: [])
        XCTAssertEqual(built.tokens.count, 134)
        XCTAssertEqual(Array(built.tokens[128...]), ["x1", "x2", "x3", "<|im_start|>", "foo", "<|im_end|>"])
        let added = built.tokenizer.addedTokens.sorted { $0.key < $1.key }.map { ($0.key, $0.value.content, $0.value.special) }
        XCTAssertEqual(added.map(\.0), [0, 1, 2, 5, 128, 129, 130, 131, 132, 133])
        XCTAssertEqual(added.map(\.1), ["<unk>", "<s>", "</s>", "t5", "x1", "x2", "x3", "<|im_start|>", "foo", "<|im_end|>"])
        XCTAssertEqual(added.map(\.2), [true, true, true, true, false, false, false, true, false, true])
        XCTAssertEqual(built.tokenizer.addedTokens[132]?.normalized, true)
        // Rows: `b` has x1, x2 at 100, 101, <|im_start|> at 128 and foo at 129; `c` has x2, x3 at 120, 121.
        XCTAssertEqual(built.permutations[1][128...].map { $0 }, [100, 101, -1, 128, 129, -1])
        XCTAssertEqual(built.permutations[2][128...].map { $0 }, [-1, 120, 121, 129, -1, 128])
        XCTAssertEqual(built.permutations[1][100], -1)
        XCTAssertEqual(built.warnings.filter { $0.contains("different settings") }.count, 1)
        // `tokens:` adds what the vocabulary lacks, as an ordinary token.
        let more = try VocabularyBuilder.build(inputs: inputs, base: 0, source: .base, addTokens: ["t7", "<new>"])
        XCTAssertEqual(more.tokens.count, 129)
        XCTAssertEqual(more.tokens[128], "<new>")
        XCTAssertEqual(more.permutations[1][128], -1)
        XCTAssertEqual(more.permutations[1][100], -1)
    }

    /// mergekit's `get_stripped_tokenizer`: the base loses the tokens at ids past its `vocab_size`.
    func testBaseIsStrippedToItsVocabSize() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let vocab = Dictionary(uniqueKeysWithValues: (0..<10).map { ("w\($0)", $0) })
        try writeWordLevel("\(dir)/base", vocab: vocab, added: [(10, "<pad>", true, false), (11, "<extra>", true, false)])
        let stripped = try VocabularyBuilder.build(inputs: [TokenizerInput(name: "base", directory: "\(dir)/base", vocabSize: 11)],
                                                   base: 0, source: .base, addTokens: [])
        XCTAssertEqual(stripped.tokens, (0..<10).map { "w\($0)" } + ["<pad>"])
        let ten = try VocabularyBuilder.build(inputs: [TokenizerInput(name: "base", directory: "\(dir)/base", vocabSize: 8)],
                                              base: 0, source: .base, addTokens: [])
        XCTAssertEqual(ten.tokens, (0..<8).map { "w\($0)" })
    }

    func testUnsupportedAndMissingTokenizers() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(#"{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}"#.utf8).write(to: URL(fileURLWithPath: "\(dir)/tokenizer.json"))
        XCTAssertThrowsError(try VocabularyBuilder.read(TokenizerInput(name: "u", directory: dir, vocabSize: nil))) { error in
            XCTAssertEqual(error as? TokenizerError, .unsupportedModel(path: "\(dir)/tokenizer.json", kind: "Unigram"))
            XCTAssertTrue(String(describing: error).contains("BPE and WordLevel"))
        }
        XCTAssertThrowsError(try VocabularyBuilder.read(TokenizerInput(name: "m", directory: "\(models)/llama-base", vocabSize: nil))) { error in
            XCTAssertEqual(error as? TokenizerError, .missingTokenizerJSON(directory: "\(models)/llama-base", files: []))
        }
    }

    func testBPEMergesAreWrittenAsPairsAndStrippedWithTheirTokens() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let json = #"""
            {"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null,
             "decoder": null, "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
             "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
             "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4}, "merges": ["a b", ["ab", "c"]]}}
            """#
        try Data(json.utf8).write(to: URL(fileURLWithPath: "\(dir)/tokenizer.json"))
        let full = try VocabularyBuilder.read(TokenizerInput(name: "bpe", directory: dir, vocabSize: nil))
        XCTAssertTrue(full.serialized().contains("\"ignore_merges\": false,\n    \"vocab\""))
        XCTAssertTrue(full.serialized().hasSuffix("\"merges\": [\n      [\n        \"a\",\n        \"b\"\n      ],\n      [\n        \"ab\",\n        \"c\"\n      ]\n    ]\n  }\n}"))
        let stripped = full.stripped(vocabSize: 3)
        XCTAssertEqual(stripped.vocabulary, ["a": 0, "b": 1, "ab": 2])
        XCTAssertTrue(stripped.serialized().contains("\"a\",\n        \"b\""))
        XCTAssertFalse(stripped.serialized().contains("\"ab\",\n        \"c\""))
    }

    private func writeWordLevel(_ dir: String, vocab: [String: Int], added: [(Int, String, Bool, Bool)]) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let entries = added.map { id, content, special, normalized in
            JSONValue.object([("id", .number(String(id))), ("content", .string(content)), ("single_word", .bool(false)),
                              ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(normalized)),
                              ("special", .bool(special))])
        }
        let json = JSONValue.object([
            ("version", .string("1.0")), ("added_tokens", .array(entries)),
            ("model", .object([("type", .string("WordLevel")),
                               ("vocab", .object(vocab.sorted { $0.value < $1.value }.map { ($0.key, .number(String($0.value))) })),
                               ("unk_token", .string("<unk>"))])),
        ])
        try Data(json.serialized().utf8).write(to: URL(fileURLWithPath: "\(dir)/tokenizer.json"))
    }
}
