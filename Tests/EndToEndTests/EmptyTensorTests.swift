import Checkpoint
import Executor
import Foundation
import IR
import XCTest

/// Checkpoints holding a tensor of no elements (a `[0, 16]` weight) merge like any other: the merged model has the
/// tensor, empty, in the merge dtype (it failed with "tensor … was never written" before: no chunk of it reaches the
/// writer).
final class EmptyTensorTests: XCTestCase {
    func testATensorOfNoElementsIsWrittenEmpty() throws {
        let directory = Fixtures.temporaryDirectory("empty-tensor")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (name, seed) in [("base", 0), ("a", 1), ("b", 2)] {
            let model = "\(directory)/\(name)"
            try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
            try #"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1}"#
                .write(toFile: "\(model)/config.json", atomically: true, encoding: .utf8)
            let writer = try SafetensorsWriter(path: "\(model)/model.safetensors",
                                               tensors: [("model.norm.weight", .f32, [16]),
                                                         ("model.layers.0.mlp.up_proj.weight", .f32, [0, 16])])
            let values = (0..<16).map { Float($0 + seed) / 8 }
            try values.withUnsafeBufferPointer { try writer.write("model.norm.weight", floats: $0) }
            try writer.finish()
        }
        for method in ["ties", "task_arithmetic", "linear"] {
            let weights = method == "linear" ? "  - model: base\n    parameters: {weight: 1}\n" : ""
            let config = "models:\n\(weights)  - model: a\n    parameters: {weight: 0.5, density: 0.5}\n"
                + "  - model: b\n    parameters: {weight: 0.5, density: 0.5}\nmerge_method: \(method)\n"
                + "base_model: base\ndtype: bfloat16\n"
            let output = "\(directory)/out-\(method)"
            try Fixtures.merge(configText: config, into: output, in: directory)
            let merged = try SafetensorsModel(directory: output)
            let empty = try XCTUnwrap(merged.tensor("model.layers.0.mlp.up_proj.weight"), method)
            XCTAssertEqual(empty.shape, [0, 16], method)
            XCTAssertEqual(empty.dtype, .bf16, method)
            XCTAssertEqual(try XCTUnwrap(merged.tensor("model.norm.weight"), method).shape, [16], method)
        }
    }
}
