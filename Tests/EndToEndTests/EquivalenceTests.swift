import Foundation
import XCTest

/// Configs that mean the same thing must give the same bytes.
final class EquivalenceTests: XCTestCase {
    /// The output's `model.safetensors`, the config's SHA-256 blanked (`Fixtures.shardBytes`).
    private func tensorFile(_ directory: String) throws -> Data {
        try Fixtures.shardBytes("\(directory)/model.safetensors")
    }

    private func merged(_ config: String) throws -> Data {
        let out = Fixtures.temporaryDirectory("eq")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try Fixtures.merge(configText: config, into: out)
        return try tensorFile(out)
    }

    func testParametersAtAnotherLevelGiveIdenticalOutput() throws {
        let perModel = """
            models:
              - model: models/llama-ft-a
                parameters: {weight: 0.6}
              - model: models/llama-ft-b
                parameters: {weight: 0.6}
            merge_method: linear
            parameters: {normalize: false}
            dtype: float32
            """
        let global = """
            models:
              - model: models/llama-ft-a
              - model: models/llama-ft-b
            merge_method: linear
            parameters:
              weight: 0.6
              normalize: false
            dtype: float32
            """
        XCTAssertEqual(try merged(perModel), try merged(global))
    }

    func testModelsAndEquivalentSlicesGiveIdenticalOutput() throws {
        let models = """
            models:
              - model: models/llama-ft-a
              - model: models/llama-ft-b
            merge_method: slerp
            base_model: models/llama-ft-a
            parameters:
              t: [0, 0.3, 1]
            dtype: float32
            """
        let slices = """
            slices:
              - sources:
                  - model: models/llama-ft-a
                    layer_range: [0, 4]
                  - model: models/llama-ft-b
                    layer_range: [0, 4]
            merge_method: slerp
            base_model: models/llama-ft-a
            parameters:
              t: [0, 0.3, 1]
            dtype: float32
            """
        XCTAssertEqual(try merged(models), try merged(slices))
    }

    func testLinearMergeOfAModelWithItselfIsBitExact() throws {
        for dtype in ["float32", "bfloat16"] {
            let source = dtype == "float32" ? "models/llama-ft-a" : "models/llama-ft-a-bf16"
            let config = """
                models:
                  - model: \(source)
                    parameters: {weight: 0.7}
                  - model: ./\(source)
                    parameters: {weight: 0.3}
                merge_method: linear
                dtype: \(dtype)
                """
            let out = Fixtures.temporaryDirectory("self")
            defer { try? FileManager.default.removeItem(atPath: out) }
            try Fixtures.merge(configText: config, into: out)
            let original = try CheckpointComparison.tensors(in: "\(Fixtures.conformance)/\(source)")
            let result = try CheckpointComparison.tensors(in: out)
            XCTAssertEqual(Set(original.keys), Set(result.keys))
            for (name, (type, values)) in original {
                XCTAssertEqual(result[name]?.0, type, name)
                XCTAssertEqual(result[name]?.1.map(\.bitPattern), values.map(\.bitPattern), name)
            }
        }
    }

    func testThreadCountDoesNotChangeOutput() throws {
        let one = Fixtures.temporaryDirectory("t1")
        let two = Fixtures.temporaryDirectory("t2")
        defer { for d in [one, two] { try? FileManager.default.removeItem(atPath: d) } }
        try Fixtures.merge(case: "model_stock", into: one, threads: 1)
        try Fixtures.merge(case: "model_stock", into: two, threads: 2)
        XCTAssertEqual(try tensorFile(one), try tensorFile(two))
    }
}
