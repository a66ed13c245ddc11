import Checkpoint
import Foundation
import XCTest

/// The tokenizer cases (`Tests/Fixtures/tokenizer/cases`, outputs of mergekit 0.1.5 with transformers 5.24):
/// `tokenizer_source` base, a model and union (WordLevel and Llama-style BPE tokenizers), the `tokenizer:` section
/// with every kind of token source, a forced token, a new token and padding, and `chat_template` (auto with inputs
/// that disagree, a name). Tensors and `config.json` pass compare.py's rules; the tokenizer files are mergekit's,
/// byte for byte.
final class TokenizerCaseTests: XCTestCase {
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
}
