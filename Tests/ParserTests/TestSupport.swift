import XCTest
@testable import Parser

/// The file name every in-memory test config is parsed under.
let testFile = "t.yml"

/// Parses `text` as `t.yml`.
func parse(_ text: String) throws -> ConfigFile {
    try ConfigParser.parse(text: text, file: testFile)
}

/// Parses `text` as a single-document config and returns that document.
func parseOne(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> MergeConfig {
    let config = try parse(text)
    XCTAssertEqual(config.documents.count, 1, file: file, line: line)
    return try XCTUnwrap(config.documents.first, file: file, line: line)
}

/// Asserts that parsing `text` fails with a message starting with `prefix` ("t.yml:L:C:") and containing `phrase`.
@discardableResult
func assertConfigError(_ text: String, _ prefix: String, _ phrase: String, strict: Bool = false,
                       file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
    do {
        let config = try ConfigParser.parse(text: text, file: testFile, strict: strict)
        XCTFail("expected an error, parsed \(config)", file: file, line: line)
        return nil
    } catch {
        let message = String(describing: error)
        XCTAssertTrue(message.hasPrefix(prefix + " "), "'\(message)' does not start with '\(prefix) '", file: file, line: line)
        XCTAssertTrue(message.contains(phrase), "'\(message)' does not contain '\(phrase)'", file: file, line: line)
        return error
    }
}

/// A location in `t.yml`.
func loc(_ line: Int, _ column: Int) -> SourceLocation {
    SourceLocation(file: testFile, line: line, column: column)
}
