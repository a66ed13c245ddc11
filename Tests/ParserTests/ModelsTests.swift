import IR
import XCTest
@testable import Parser

/// Documents with `models:` (grammar: document, model-entry, model-ref, dtype).
final class ModelsTests: XCTestCase {
    func testLinearWithWeights() throws {
        let doc = try parseOne("""
            models:
              - model: models/llama-ft-a
                parameters:
                  weight: 0.6
              - model: models/llama-ft-b
                parameters:
                  weight: 0.4
            merge_method: linear
            dtype: float32
            """)
        XCTAssertEqual(doc.mergeMethod, Located("linear", at: loc(8, 15)))
        XCTAssertEqual(doc.dtype, Located(DType.f32, at: loc(9, 8)))
        XCTAssertNil(doc.outDtype)
        XCTAssertNil(doc.baseModel)
        XCTAssertNil(doc.name)
        XCTAssertEqual(doc.location, loc(1, 1))
        XCTAssertEqual(doc.inputsLocation, loc(1, 1))
        XCTAssertEqual(doc.file, testFile)
        guard case .models(let models) = doc.inputs else { return XCTFail("expected models") }
        XCTAssertEqual(models.map(\.model.path), ["models/llama-ft-a", "models/llama-ft-b"])
        XCTAssertEqual(models[0].location, loc(2, 5))
        XCTAssertEqual(models[0].model.location, loc(2, 12))
        XCTAssertEqual(models[1].location, loc(5, 5))
        XCTAssertEqual(models[0].parameters["weight"]?.value, .scalar(.number(0.6)))
        XCTAssertEqual(models[0].parameters["weight"]?.location, loc(4, 15))
        XCTAssertEqual(models[1].parameters["weight"]?.value, .scalar(.number(0.4)))
    }

    func testBaseModelOutDtypeAndBareEntry() throws {
        let doc = try parseOne("""
            merge_method: ties
            base_model: models/llama-base
            out_dtype: bf16
            dtype: half
            models:
              - model: models/llama-base
              - model: "org/model+org/lora"
            """)
        XCTAssertEqual(doc.baseModel?.path, "models/llama-base")
        XCTAssertEqual(doc.baseModel?.location, loc(2, 13))
        XCTAssertEqual(doc.outDtype?.value, .bf16)
        XCTAssertEqual(doc.dtype?.value, .f16)
        XCTAssertEqual(doc.inputsLocation, loc(5, 1))
        guard case .models(let models) = doc.inputs else { return XCTFail("expected models") }
        XCTAssertTrue(models[0].parameters.isEmpty)
        XCTAssertEqual(models[1].model.path, "org/model+org/lora")
    }

    func testNullOptionalKeysAreAbsent() throws {
        let doc = try parseOne("""
            merge_method: linear
            base_model: null
            dtype: ~
            parameters:
            models:
              - model: a
                parameters: null
            """)
        XCTAssertNil(doc.baseModel)
        XCTAssertNil(doc.dtype)
        XCTAssertTrue(doc.parameters.isEmpty)
    }

    func testFlowStyleDocument() throws {
        let doc = try parseOne("{merge_method: linear, models: [{model: a, parameters: {weight: 1}}]}")
        guard case .models(let models) = doc.inputs else { return XCTFail("expected models") }
        XCTAssertEqual(models.first?.parameters["weight"]?.value, .scalar(.number(1)))
        XCTAssertEqual(models.first?.location, loc(1, 33))
    }

    func testConformanceFixturesParse() throws {
        let cases = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/conformance/cases").standardized
        let names = try FileManager.default.contentsOfDirectory(atPath: cases.path).sorted()
        XCTAssertFalse(names.isEmpty)
        for name in names {
            let path = cases.appendingPathComponent(name).appendingPathComponent("config.yml").path
            let config = try ConfigParser.parse(file: path)
            XCTAssertFalse(config.documents.isEmpty, name)
            XCTAssertEqual(config.path, path)
            XCTAssertEqual(config.documents.flatMap(\.unsupportedKeys), [], name)
        }
    }
}

/// Model references split as mergekit 0.1.5's `ModelReference.validate_string` splits them.
final class ModelReferencePartsTests: XCTestCase {
    private func parts(_ text: String) -> (model: ModelPath, adapter: ModelPath?)? {
        ModelReference(path: text, location: SourceLocation(file: "m.yml", line: 1, column: 1)).parts
    }

    func testModelAdapterAndRevisions() throws {
        let plain = try XCTUnwrap(parts("models/llama-base"))
        XCTAssertEqual(plain.model, ModelPath(path: "models/llama-base"))
        XCTAssertNil(plain.adapter)
        let hub = try XCTUnwrap(parts("org/name@main+org/adapter@5f3c"))
        XCTAssertEqual(hub.model, ModelPath(path: "org/name", revision: "main"))
        XCTAssertEqual(hub.adapter, ModelPath(path: "org/adapter", revision: "5f3c"))
        XCTAssertEqual(hub.model.description, "org/name@main")
        for bad in ["a+b+c", "a@b@c", "+adapter", "model+", "model@", "@rev"] { XCTAssertNil(parts(bad), bad) }
    }
}
