import XCTest
@testable import Parser

/// Every `ConfigError` case, its location and its message (rules R0, R1, R5–R13).
final class ErrorTests: XCTestCase {
    func testSyntaxErrorHasLibyamlPosition() {
        let error = assertConfigError("merge_method: linear\nmodels:\n  - model: a\n  bad\n", "t.yml:5:1:",
                                      "could not find expected ':' (while scanning a simple key at line 4, column 3)")
        guard case .syntax? = error else { return XCTFail("expected .syntax, got \(String(describing: error))") }
    }

    func testUnclosedFlowSequence() {
        assertConfigError("merge_method: linear\nmodels: [{model: a}\n", "t.yml:3:1:", "did not find expected")
    }

    func testControlCharacterIsASyntaxError() {
        assertConfigError("merge_method: linear\nmodels: [{model: a\u{1}}]\n", "t.yml:2:19:", "control characters are not allowed")
    }

    func testUnknownKeyWithSuggestion() {
        let error = assertConfigError("merge_mehtod: linear\nmodels: [{model: a}]\n",
                                      "t.yml:1:1:", "unknown key 'merge_mehtod' (did you mean 'merge_method'?)")
        XCTAssertEqual(error?.location, loc(1, 1))
    }

    /// mergekit's schema ignores unknown keys: a warning with the position, or the error with `strict`.
    func testUnknownKeyWithoutSuggestion() throws {
        let text = "merge_method: linear\nmodels: [{model: a}]\nfrobnicate: 1\n"
        let config = try ConfigParser.parse(text: text, file: testFile)
        XCTAssertEqual(config.warnings, ["t.yml:3:1: warning: unknown key 'frobnicate' in a mapping of config keys; "
                                         + "mergekit ignores it, and so does mergegraph (--strict makes this an error)"])
        XCTAssertThrowsError(try ConfigParser.parse(text: text, file: testFile, strict: true)) {
            XCTAssertTrue("\($0)".hasPrefix("t.yml:3:1: unknown key 'frobnicate' (expected one of 'merge_method', 'name',"))
        }
    }

    /// `bf16` and the other short dtype aliases run, with a warning that mergekit 0.1.5 rejects them; the names
    /// mergekit knows (with or without `torch.`) give none; `--strict` makes an alias an error.
    func testDtypeAliasWarnsThatMergekitRejectsIt() throws {
        let text = "merge_method: linear\nmodels: [{model: a}]\ndtype: bf16\nout_dtype: torch.float16\n"
        let config = try ConfigParser.parse(text: text, file: testFile)
        XCTAssertEqual(config.documents[0].dtype?.value, .bf16)
        XCTAssertEqual(config.warnings, ["t.yml:3:8: warning: dtype 'bf16' is mergegraph's alias for 'bfloat16'; "
                                         + "mergekit 0.1.5 rejects it (Unimplemented dtype), so write 'bfloat16' for a "
                                         + "config both run (--strict makes this an error)"])
        XCTAssertThrowsError(try ConfigParser.parse(text: text, file: testFile, strict: true)) {
            XCTAssertTrue("\($0)".hasPrefix("t.yml:3:8: dtype 'bf16' is mergegraph's alias"), "\($0)")
        }
        let plain = try ConfigParser.parse(text: "merge_method: linear\nmodels: [{model: a}]\ndtype: bfloat16\n",
                                           file: testFile, strict: true)
        XCTAssertEqual(plain.warnings, [])
    }

    func testUnknownModelEntryKey() throws {
        let text = "merge_method: linear\nmodels:\n  - model: a\n    parameter:\n      weight: 1\n"
        let config = try ConfigParser.parse(text: text, file: testFile)
        XCTAssertEqual(config.warnings.count, 1)
        XCTAssertTrue(config.warnings[0].hasPrefix("t.yml:4:5: warning: unknown key 'parameter' in a model entry"))
        XCTAssertTrue(config.warnings[0].contains("(did you mean 'parameters'?)"))
        guard case .models(let models) = config.documents[0].inputs else { return XCTFail() }
        XCTAssertTrue(models[0].parameters.entries.isEmpty, "the ignored key contributes nothing")
        XCTAssertThrowsError(try ConfigParser.parse(text: text, file: testFile, strict: true)) {
            XCTAssertTrue("\($0)".contains("t.yml:4:5: unknown key 'parameter' (did you mean 'parameters'?)"))
        }
    }

    /// The configs of mergekit users that hold anchors in a key mergekit ignores (`defaults:`), and `layer_range`
    /// under `models:`, parse with warnings only.
    func testAnchorHoldersAndIgnoredKeysParse() throws {
        let text = """
            defaults: &d
              weight: 0.5
            models:
              - model: a
                layer_range: [0, 4]
                parameters:
                  <<: *d
              - model: b
                parameters: *d
            merge_method: linear
            """
        let config = try ConfigParser.parse(text: text, file: testFile)
        XCTAssertEqual(config.warnings.map { String($0.prefix(10)) }, ["t.yml:1:1:", "t.yml:5:5:"])
        guard case .models(let models) = config.documents[0].inputs else { return XCTFail() }
        XCTAssertEqual(models.map { $0.parameters["weight"]?.value }, [.scalar(.number(0.5)), .scalar(.number(0.5))])
    }

    /// With `--strict`, a key written twice is an error naming both places.
    func testDuplicateKeyIsAnErrorWhenStrict() {
        let error = assertConfigError("merge_method: linear\nmodels: [{model: a}]\nmerge_method: ties\n",
                                      "t.yml:3:1:", "duplicate key 'merge_method' (first written at line 1, column 1)",
                                      strict: true)
        XCTAssertEqual(error, .duplicateKey(loc(3, 1), key: "merge_method", first: loc(1, 1)))
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1, weight: 2}\n",
                          "t.yml:4:29:", "duplicate key 'weight'", strict: true)
    }

    /// Without `--strict`, a key written twice keeps its last value, as PyYAML (mergekit's reader) does, with a
    /// warning at the second place.
    func testDuplicateKeyKeepsTheLastValueAsPyYAML() throws {
        let text = "merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: 1, weight: 2}\nmerge_method: linear\n"
        let config = try ConfigParser.parse(text: text, file: testFile)
        XCTAssertEqual(config.documents[0].mergeMethod.value, "linear")
        guard case .models(let models) = config.documents[0].inputs else { return XCTFail() }
        XCTAssertEqual(models[0].parameters["weight"]?.value, .scalar(.number(2)))
        XCTAssertEqual(config.warnings.map { String($0.prefix(11)) }, ["t.yml:4:29:", "t.yml:5:1: "])
        XCTAssertTrue(config.warnings[1].contains("warning: duplicate key 'merge_method' (first written at line 1, "
                                                  + "column 1); mergekit (PyYAML) keeps the last value"), config.warnings[1])
    }

    func testModelsMustBeAList() {
        let error = assertConfigError("merge_method: linear\nmodels: models/a\n",
                                      "t.yml:2:9:", "expected a list of model entries, found a string")
        XCTAssertEqual(error, .wrongType(loc(2, 9), expected: "a list of model entries", found: "a string"))
    }

    func testModelEntryMustBeAMapping() {
        assertConfigError("merge_method: linear\nmodels:\n  - models/a\n",
                          "t.yml:3:5:", "expected a model entry (a mapping with 'model'), found a string")
    }

    func testModelReferenceMustBeAPath() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: {path: a}\n",
                          "t.yml:3:12:", "expected a model path, found a mapping")
        assertConfigError("merge_method: linear\nmodels:\n  - model:\n",
                          "t.yml:3:11:", "expected a model path, found null")
        assertConfigError("merge_method: linear\nmodels:\n  - model: \"\"\n",
                          "t.yml:3:12:", "a model path must not be empty")
    }

    func testMergeMethodMustBeAScalar() {
        assertConfigError("merge_method: [linear]\nmodels: [{model: a}]\n",
                          "t.yml:1:15:", "expected a merge method name, found a list")
    }

    func testNameMustBeAScalar() {
        assertConfigError("name: {a: 1}\nmerge_method: linear\nmodels: [{model: a}]\n",
                          "t.yml:1:7:", "expected a stage name, found a mapping")
    }

    func testMissingMergeMethod() {
        let error = assertConfigError("\nmodels:\n  - model: a\n", "t.yml:2:1:", "missing required key 'merge_method'")
        XCTAssertEqual(error, .missingKey(loc(2, 1), key: "merge_method"))
    }

    func testMissingModelInEntry() {
        assertConfigError("merge_method: linear\nmodels:\n  - parameters: {weight: 1}\n",
                          "t.yml:3:5:", "missing required key 'model'")
    }

    func testBothModelsAndSlices() {
        let error = assertConfigError("""
            merge_method: linear
            models: [{model: a}]
            slices:
              - sources: [{model: a, layer_range: [0, 1]}]
            """, "t.yml:3:1:", "exactly one of 'models' or 'slices' must be present")
        XCTAssertEqual(error, .exclusiveKeys(loc(3, 1), keys: ["models", "slices"]))
    }

    func testModelsAndModules() {
        assertConfigError("merge_method: linear\nmodules: {a: 1}\nmodels: [{model: a}]\n",
                          "t.yml:3:1:", "exactly one of 'models' or 'slices' must be present")
    }

    func testNeitherModelsNorSlices() {
        assertConfigError("merge_method: linear\ndtype: float32\n", "t.yml:1:1:",
                          "exactly one of 'models' or 'slices' must be present")
    }

    func testEmptyModelsOnly() {
        assertConfigError("merge_method: linear\nmodels: []\n", "t.yml:2:1:",
                          "exactly one of 'models' or 'slices' must be present")
    }

    func testBadDtype() {
        let error = assertConfigError("merge_method: linear\nmodels: [{model: a}]\ndtype: float8\n",
                                      "t.yml:3:8:", "unknown dtype 'float8' (expected float32, float16, bfloat16 or float64)")
        XCTAssertEqual(error?.location, loc(3, 8))
        assertConfigError("merge_method: linear\nmodels: [{model: a}]\nout_dtype: [bf16]\n",
                          "t.yml:3:12:", "expected a dtype name, found a list")
    }

    func testEmptyFile() {
        assertConfigError("", "t.yml:1:1:", "expected a mapping of config keys, found an empty file")
        assertConfigError("# only a comment\n---\n", "t.yml:1:1:", "expected a mapping of config keys, found an empty file")
    }

    func testDocumentMustBeAMapping() {
        assertConfigError("- merge_method: linear\n", "t.yml:1:1:", "expected a mapping of config keys, found a list")
        assertConfigError("merge_method: linear\nmodels: [{model: a}]\n---\nlinear\n",
                          "t.yml:4:1:", "expected a mapping of config keys, found a string")
    }

    func testMissingFile() {
        let path = "/nonexistent/mergegraph/config.yml"
        XCTAssertThrowsError(try ConfigParser.parse(file: path)) { error in
            XCTAssertEqual(String(describing: error), "\(path): No such file or directory")
            XCTAssertNil((error as? ConfigError)?.location)
        }
    }

    func testDirectoryIsAnIOError() {
        XCTAssertThrowsError(try ConfigParser.parse(file: NSTemporaryDirectory())) { error in
            guard case .io? = error as? ConfigError else { return XCTFail("expected .io, got \(error)") }
        }
    }

    func testNonUTF8File() throws {
        let path = NSTemporaryDirectory() + "mergegraph-parser-latin1-\(UInt32.random(in: 0...UInt32.max)).yml"
        try Data([0x6D, 0x3A, 0x20, 0xE9, 0x0A]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try ConfigParser.parse(file: path)) { error in
            XCTAssertEqual(String(describing: error), "\(path): not valid UTF-8 text")
        }
    }

    func testKeySuggestionDistance() {
        XCTAssertEqual(KeySuggestion.distance("kitten", "sitting"), 3)
        XCTAssertEqual(KeySuggestion.distance("", "abc"), 3)
        XCTAssertEqual(KeySuggestion.closest(to: "dtpye", among: DocumentDecoder.keys), "dtype")
        XCTAssertNil(KeySuggestion.closest(to: "zzzzzzzz", among: DocumentDecoder.keys))
    }
}

/// Inputs that once crashed or took seconds: deep nesting is refused at the level that crosses the limit.
final class NestingLimitTests: XCTestCase {
    func testDeeplyNestedFlowListIsRefusedQuickly() {
        // 60,000 levels (120 KB): took 10 s to parse, then overflowed the stack tearing the tree down.
        let depth = 60_000
        let text = "merge_method: linear\njunk: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        let start = Date()
        assertConfigError(text, "t.yml:2:1006:", "nested more than 1000 levels deep")
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "refused at the limit, without parsing the rest")
    }

    func testDeeplyNestedBlockMappingsAreRefused() {
        let text = (0..<1001).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + " 1\n"
        assertConfigError(text, "t.yml:1001:1001:", "nested more than 1000 levels deep")
    }

    func testNestingAtTheLimitParses() throws {
        // 999 levels inside the document's top-level mapping: 1000 in all.
        let text = "merge_method: linear\nmodels: [{model: a}]\njunk: " + String(repeating: "[", count: 999)
            + String(repeating: "]", count: 999) + "\n"
        XCTAssertNoThrow(try ConfigParser.parse(text: text, file: testFile))
    }

    func testAliasesCannotNestDeeperThanTheLimit() {
        // Each anchor nests the previous one 600 levels deeper: two are within the limit as written, not expanded.
        let open = String(repeating: "[", count: 600), close = String(repeating: "]", count: 600)
        let text = "merge_method: linear\na: &a \(open)1\(close)\nb: &b \(open)*a\(close)\n"
        assertConfigError(text, "t.yml:3:207:", "aliases nest this node more than 1000 levels deep")
    }

    func testAliasesCannotExpandPastTheNodeLimit() {
        // "Billion laughs": each list holds ten aliases of the previous one, 10^6 scalars at l5, 10^7 at l6.
        var lines = ["merge_method: linear", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in 1...6 { lines.append("l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 10).joined(separator: ", ") + "]") }
        let start = Date()
        assertConfigError(lines.joined(separator: "\n"), "t.yml:7:5:", "aliases expand this node to more than 1000000 nodes")
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "refused without expanding it")
    }
}
