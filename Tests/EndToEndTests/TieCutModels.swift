import Checkpoint
import Executor
import Foundation
import IR
import Parser
import Planner

/// fp16 models whose task vectors take few distinct values, so that thousands of elements tie at a TIES cut: a base
/// and two fine-tunes ("a", "b"), merged by `config` (TIES at density 0.5, weights 0.5, fp16).
enum TieCutModels {
    /// Writes `base`, `a` and `b` into `directory`, each with `tensors` (name, shape: [rows, columns] or [columns]);
    /// element (r, c) of fine-tune seed s (base 0) is 1 + s·((31r + 7c + 13s) mod 97 − 48)/256.
    static func write(in directory: String, layers: Int, tensors: [(name: String, shape: [Int])]) throws {
        for (name, seed) in [("base", 0), ("a", 1), ("b", 2)] {
            let model = "\(directory)/\(name)"
            try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
            try (#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": \#(layers), "#
                 + #""torch_dtype": "float16"}"#).write(toFile: "\(model)/config.json", atomically: true, encoding: .utf8)
            let writer = try SafetensorsWriter(path: "\(model)/model.safetensors",
                                               tensors: tensors.map { ($0.name, DType.f16, $0.shape) })
            for tensor in tensors {
                let columns = tensor.shape.last ?? 1, rows = tensor.shape.count > 1 ? tensor.shape[0] : 1
                var row = [Float](repeating: 0, count: columns)
                for r in 0..<rows {
                    for c in 0..<columns { row[c] = 1 + Float(seed * ((r * 31 + c * 7 + seed * 13) % 97 - 48)) / 256 }
                    try row.withUnsafeBufferPointer { try writer.write(tensor.name, elementOffset: r * columns, floats: $0) }
                }
            }
            try writer.finish()
        }
    }

    static let config = """
        models:
          - model: a
            parameters: {weight: 0.5, density: 0.5}
          - model: b
            parameters: {weight: 0.5, density: 0.5}
        merge_method: ties
        base_model: base
        dtype: float16
        """

    /// `config` compiled for the models in `directory` within `limits`.
    static func compile(in directory: String, limits: Scheduler.Limits) throws -> Plan {
        let previous = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(directory)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        return try Compiler.compile(try ConfigParser.parse(text: config, file: "ties.yml"), catalog: LocalCheckpointCatalog(),
                                    costs: StreamingCostModel(), options: PlannerOptions(limits: limits))
    }
}
