import Checkpoint
import Executor
import Foundation
import IR
import Parser
import Planner
import XCTest

/// Task vectors computed as their minuend is read (`LoadSubtractChunkKernel`) have the bits of a load then a
/// subtraction: bf16 inputs merged in bf16 (the direct bf16 loop), f16 inputs merged in f16 (decoded, then
/// subtracted in place), an input cast to the merge dtype first (not fused), a task vector kept whole across SCE's
/// passes (fused in the sweep that computes it), and an infinite input value, which the fused read still reports
/// (else the run would stop at a non-finite output).
final class LoadSubtractFusionTests: XCTestCase {
    /// Tensors of the models: a matrix whose rows are not a multiple of the eight lanes, a vector, and a matrix of
    /// more than one parallel block (65,536 elements).
    private static let tensors: [(name: String, shape: [Int])] = [
        ("model.layers.0.self_attn.q_proj.weight", [37, 29]),
        ("model.layers.0.input_layernorm.weight", [29]),
        ("model.layers.0.mlp.up_proj.weight", [300, 229]),
    ]

    /// Writes `base`, `a`, `b` (bf16) and `base16`, `c`, `d` (f16) into `directory`; element k of seed s is
    /// `sin(k·0.37 + s)·2^(k mod 19 − 9)·(1 + s/8)`, and `b` holds +∞ at element 5 of the first tensor when `infinite`.
    private static func writeModels(in directory: String, infinite: Bool) throws {
        for (name, seed, dtype) in [("base", 0, DType.bf16), ("a", 1, .bf16), ("b", 2, .bf16), ("base16", 0, .f16),
                                    ("c", 3, .f16), ("d", 4, .f16)] {
            let model = "\(directory)/\(name)"
            try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
            try (#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1, "#
                 + #""torch_dtype": "\#(dtype == .bf16 ? "bfloat16" : "float16")"}"#)
                .write(toFile: "\(model)/config.json", atomically: true, encoding: .utf8)
            let writer = try SafetensorsWriter(path: "\(model)/model.safetensors",
                                               tensors: tensors.map { ($0.name, dtype, $0.shape) })
            for (t, tensor) in tensors.enumerated() {
                var values: [Float] = []
                for k in 0..<tensor.shape.reduce(1, *) {
                    let wave = sin(Double(k) * 0.37 + Double(seed))
                    let scale: Double = pow(2, Double(k % 19 - 9)) * (1 + Double(seed) / 8)
                    values.append(Float(wave * scale))
                }
                if infinite, name == "b", t == 0 { values[5] = Float.infinity }
                try values.withUnsafeBufferPointer { try writer.write(tensor.name, floats: $0) }
            }
            try writer.finish()
        }
    }

    /// Runs `config` on the models in `directory` with the fusion on or off; returns the output shards' bytes and
    /// how many subtractions were fused.
    private func merge(_ config: String, in directory: String, fusing: Bool) throws -> (bytes: [Data], fused: Int) {
        let output = "\(directory)/out-\(fusing)"
        defer { try? FileManager.default.removeItem(atPath: output) }
        return try Fixtures.inFolder(directory) {
            let catalog = LocalCheckpointCatalog()
            let plan = try Compiler.compile(try ConfigParser.parse(text: config, file: "fusion.yml"), catalog: catalog,
                                            costs: StreamingCostModel(),
                                            options: PlannerOptions(limits: Scheduler.Limits(threads: 2)))
            var options = ExecutionOptions(overwrite: true)
            options.fusesLoadSubtractions = fusing
            let executor = PlanExecutor(plan: plan, catalog: catalog, options: options)
            try executor.run(outputDirectory: output)
            let shards = try FileManager.default.contentsOfDirectory(atPath: output)
                .filter { $0.hasSuffix(".safetensors") }.sorted()
            XCTAssertFalse(shards.isEmpty)
            return (try shards.map { try Data(contentsOf: URL(fileURLWithPath: "\(output)/\($0)")) },
                    executor.counters.fusedLoadSubtractions)
        }
    }

    func testFusedTaskVectorsHaveTheTwoStepsBits() throws {
        for infinite in [false, true] {
            let directory = Fixtures.temporaryDirectory("fusion")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.writeModels(in: directory, infinite: infinite)
            // (method, dtype, base, fine-tunes, subtractions fused per tensor)
            let cases: [(method: String, dtype: String, base: String, models: [String], fused: Int)] = infinite
                ? [("task_arithmetic", "bfloat16", "base", ["a", "b"], 2)]
                : [("task_arithmetic", "bfloat16", "base", ["a", "b"], 2), ("ties", "bfloat16", "base", ["a", "b"], 2),
                   ("task_arithmetic", "float16", "base16", ["c", "d"], 2),
                   ("task_arithmetic", "bfloat16", "base", ["a", "c"], 1),
                   // SCE's task vectors are kept whole across its passes: fused where they are first computed.
                   // (Not in f16: these values' squares pass f16's range, and mergekit's weights become NaN.)
                   ("sce", "bfloat16", "base", ["a", "b"], 2)]
            for c in cases {
                let models = c.models.map { "  - model: \($0)\n    parameters: {weight: 0.5, density: 0.6}\n" }.joined()
                let config = "models:\n\(models)merge_method: \(c.method)\nbase_model: \(c.base)\ndtype: \(c.dtype)\n"
                    + (c.method == "sce" ? "parameters: {select_topk: 0.5}\n" : "")
                let fused = try merge(config, in: directory, fusing: true)
                let plain = try merge(config, in: directory, fusing: false)
                let label = "\(c.method) \(c.dtype) \(c.models), infinite input: \(infinite)"
                XCTAssertEqual(fused.fused, c.fused * Self.tensors.count, label)
                XCTAssertEqual(plain.fused, 0, label)
                XCTAssertEqual(fused.bytes, plain.bytes, label)
            }
        }
    }
}
