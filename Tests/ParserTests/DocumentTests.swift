import XCTest
@testable import Parser

/// Whole files: multiple documents, stage names, anchors and aliases, unsupported keys (rules R2–R4, R6, R10).
final class DocumentTests: XCTestCase {
    func testMultiDocumentWithNames() throws {
        let config = try parse("""
            name: ties-ab
            merge_method: ties
            base_model: models/llama-base
            models:
              - model: models/llama-ft-a
            ---
            name: "ties-bc"
            merge_method: ties
            models:
              - model: models/llama-ft-b
            ---
            merge_method: slerp
            base_model: ties-ab
            models:
              - model: ties-ab
              - model: ties-bc
            """)
        XCTAssertEqual(config.path, testFile)
        XCTAssertEqual(config.documents.count, 3)
        XCTAssertEqual(config.documents[0].name, Located("ties-ab", at: loc(1, 7)))
        XCTAssertEqual(config.documents[1].name?.value, "ties-bc")
        XCTAssertNil(config.documents[2].name)
        XCTAssertEqual(config.documents.map(\.location), [loc(1, 1), loc(7, 1), loc(12, 1)])
        XCTAssertEqual(config.documents[2].baseModel?.path, "ties-ab")
    }

    func testEmptyDocumentsAreSkipped() throws {
        let config = try parse("---\nmerge_method: linear\nmodels: [{model: a}]\n---\n---\nmerge_method: linear\nmodels: [{model: b}]\n---\n")
        XCTAssertEqual(config.documents.count, 2)
        XCTAssertEqual(config.documents[1].location, loc(6, 1))
    }

    func testEachDocumentIsValidated() {
        assertConfigError("merge_method: linear\nmodels: [{model: a}]\n---\nmerge_method: linear\n",
                          "t.yml:4:1:", "exactly one of 'models' or 'slices' must be present")
    }

    func testAnchorsAndAliases() throws {
        let doc = try parseOne("""
            merge_method: task_arithmetic
            base_model: &base models/llama-base
            models:
              - model: models/llama-ft-a
                parameters: &params
                  weight: 1.0
                  density: 0.5
              - model: models/llama-ft-b
                parameters: *params
              - model: *base
            """)
        guard case .models(let models) = doc.inputs else { return XCTFail("expected models") }
        XCTAssertEqual(models[1].parameters, models[0].parameters)
        XCTAssertEqual(models[1].parameters["density"]?.value, .scalar(.number(0.5)))
        XCTAssertEqual(models[2].model.path, "models/llama-base")
        XCTAssertEqual(models[2].model.location, loc(2, 13))
    }

    func testMergeKey() throws {
        let doc = try parseOne("""
            merge_method: linear
            models:
              - model: a
                parameters: &common {weight: 0.5, density: 0.3}
              - model: b
                parameters:
                  <<: *common
                  weight: 0.7
            """)
        guard case .models(let models) = doc.inputs else { return XCTFail("expected models") }
        XCTAssertEqual(models[1].parameters["weight"]?.value, .scalar(.number(0.7)))
        XCTAssertEqual(models[1].parameters["density"]?.value, .scalar(.number(0.3)))
        XCTAssertEqual(models[1].parameters.entries.count, 2)
    }

    func testMergeKeyNeedsAMapping() {
        assertConfigError("merge_method: linear\nmodels: [{model: a}]\nparameters:\n  <<: 1\n",
                          "t.yml:4:7:", "expected a mapping to merge with '<<', found a number")
    }

    func testUndefinedAlias() {
        assertConfigError("merge_method: linear\nbase_model: *nowhere\nmodels: [{model: a}]\n",
                          "t.yml:2:13:", "undefined alias 'nowhere'")
    }

    func testAnchorsDoNotCrossDocuments() {
        assertConfigError("merge_method: &m linear\nmodels: [{model: a}]\n---\nmerge_method: *m\nmodels: [{model: a}]\n",
                          "t.yml:4:15:", "undefined alias 'm'")
    }

    func testAliasBombIsRejected() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...7 {
            text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        assertConfigError(text, "t.yml:6:5:", "more than 1000000 nodes")
    }

    func testModulesAloneGivesEmptyModelsAndIsRecorded() throws {
        let doc = try parseOne("merge_method: linear\nmodules:\n  text_decoder:\n    models: [{model: a}]\n")
        XCTAssertEqual(doc.inputs, .models([]))
        XCTAssertEqual(doc.inputsLocation, loc(2, 1))
        XCTAssertEqual(doc.unsupportedKeys, [Located("modules", at: loc(2, 1))])
    }

    func testEmptyListCountsAsAbsent() throws {
        let doc = try parseOne("merge_method: passthrough\nmodels: []\nslices:\n  - sources: [{model: a, layer_range: [0, 1]}]\n")
        guard case .slices = doc.inputs else { return XCTFail("expected slices") }
        XCTAssertEqual(doc.inputsLocation, loc(3, 1))
    }

    func testParseFile() throws {
        let path = NSTemporaryDirectory() + "mergegraph-parser-test-\(UInt32.random(in: 0...UInt32.max)).yml"
        try "merge_method: linear\nmodels: [{model: a}]\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try ConfigParser.parse(file: path)
        XCTAssertEqual(config.path, path)
        XCTAssertEqual(config.documents.first?.mergeMethod.location.file, path)
    }
}
