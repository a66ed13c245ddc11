import XCTest
@testable import Parser

/// `tokenizer_source`, `tokenizer:` and `chat_template` as mergekit 0.1.5's schema reads them.
final class TokenizerSettingsTests: XCTestCase {
    private let head = "merge_method: linear\nmodels: [{model: a}]\n"

    func testTokenizerSourceValues() throws {
        XCTAssertEqual(try parseOne(head + "tokenizer_source: union\n").tokenizer,
                       TokenizerSettings(source: Located(.union, at: loc(3, 19)), location: loc(3, 1)))
        XCTAssertEqual(try parseOne(head + "tokenizer_source: base\n").tokenizer?.source.value, .base)
        let ref = ModelReference(path: "org/name", location: loc(3, 19))
        XCTAssertEqual(try parseOne(head + "tokenizer_source: org/name\n").tokenizer?.source.value, .model(ref))
        XCTAssertNil(try parseOne(head + "tokenizer_source: null\n").tokenizer)
        XCTAssertNil(try parseOne(head).tokenizer)
    }

    func testSectionDefaultsToUnion() throws {
        let settings = try XCTUnwrap(try parseOne(head + "tokenizer:\n  pad_to_multiple_of: 64\n").tokenizer)
        XCTAssertEqual(settings.source.value, .union)
        XCTAssertEqual(settings.padToMultipleOf?.value, 64)
        XCTAssertEqual(settings.tokens, [])
    }

    func testTokensInEveryForm() throws {
        let doc = try parseOne(head + """
            tokenizer:
              source: base
              tokens:
                <|im_start|>:
                  source: models/chatml
                <|im_end|>:
                  source: {kind: zero}
                  force: true
                <x>:
                  source: {kind: model_token, model: m, token: "<s>"}
                <y>:
                  source: {kind: model_token, model: m, token_id: 7}
                <z>: {}
            """)
        let tokens = try XCTUnwrap(doc.tokenizer?.tokens)
        XCTAssertEqual(tokens.map(\.token), ["<|im_start|>", "<|im_end|>", "<x>", "<y>", "<z>"])
        XCTAssertEqual(tokens[0].source, .model(ModelReference(path: "models/chatml", location: loc(7, 15))))
        XCTAssertEqual(tokens[1].source, .zero)
        XCTAssertEqual(tokens.map(\.force), [false, true, false, false, false])
        XCTAssertEqual(tokens[2].source, .modelToken(model: ModelReference(path: "m", location: loc(1, 1)), token: .text("<s>")))
        XCTAssertEqual(tokens[3].source, .modelToken(model: ModelReference(path: "m", location: loc(1, 1)), token: .id(7)))
        XCTAssertNil(tokens[4].source)
        XCTAssertEqual(tokens[0].location, loc(6, 5))
    }

    /// mergekit's schema reads `{model: M, token: T}` without `kind` as the model reference M; the token is ignored.
    func testModelMappingWithoutKindIsAModelReferenceWithAWarning() throws {
        let config = try parse(head + "tokenizer:\n  tokens:\n    <x>:\n      source: {model: m, token: y}\n")
        XCTAssertEqual(config.documents[0].tokenizer?.tokens[0].source, .model(ModelReference(path: "m", location: loc(1, 1))))
        XCTAssertEqual(config.warnings.count, 1)
        XCTAssertTrue(config.warnings[0].hasPrefix("t.yml:6:26: warning: unknown key 'token'"), config.warnings[0])
    }

    func testErrors() {
        assertConfigError(head + "tokenizer_source: union\ntokenizer:\n  source: base\n", "t.yml:4:1:",
                          "cannot specify both 'tokenizer_source' and 'tokenizer'")
        assertConfigError(head + "tokenizer: base\n", "t.yml:3:12:", "expected a tokenizer section")
        assertConfigError(head + "tokenizer:\n  pad_to_multiple_of: 2.5\n", "t.yml:4:23:", "whole number")
        assertConfigError(head + "tokenizer:\n  tokens: [a]\n", "t.yml:4:11:", "expected a mapping of tokens")
        assertConfigError(head + "tokenizer:\n  tokens:\n    x: {source: {kind: model_token, model: m}}\n", "t.yml:5:17:",
                          "token_id or token must be specified")
        assertConfigError(head + "tokenizer:\n  tokens:\n    x: {source: {kind: model_token, model: m, token: a, token_id: 1}}\n",
                          "t.yml:5:17:", "only one of token_id or token")
        assertConfigError(head + "tokenizer:\n  tokens:\n    x: {source: {kind: one}}\n", "t.yml:5:24:", "unknown token source kind 'one'")
        assertConfigError(head + "tokenizer:\n  tokens:\n    x: {force: 1}\n", "t.yml:5:16:", "expected true or false")
        assertConfigError(head + "tokenizer_source: ''\n", "t.yml:3:19:", "must not be empty")
    }

    func testChatTemplate() throws {
        XCTAssertEqual(try parseOne(head + "chat_template: chatml\n").chatTemplate, Located("chatml", at: loc(3, 16)))
        XCTAssertEqual(try parseOne(head + "chat_template: \"{{ x }}\"\n").chatTemplate?.value, "{{ x }}")
        XCTAssertNil(try parseOne(head + "chat_template: null\n").chatTemplate)
    }
}
