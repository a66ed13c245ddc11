import Checkpoint
import Executor
import Foundation
import IR
import Parser
import Planner
import XCTest

/// One-layer Llama checkpoints written for the executor's end-to-end tests, and merges of them run in process.
enum SyntheticLlama {
    /// Tensors of the models: a matrix whose rows are not a multiple of the eight lanes, a vector, and a matrix of
    /// more than one parallel block (65,536 elements).
    static let tensors: [(name: String, shape: [Int])] = [
        ("model.layers.0.self_attn.q_proj.weight", [37, 29]),
        ("model.layers.0.input_layernorm.weight", [29]),
        ("model.layers.0.mlp.up_proj.weight", [300, 229]),
    ]

    /// Writes model `name` into `directory/name` in `dtype` (bf16 or f16), tensor `t`'s element `k` being
    /// `value(t, k)`.
    static func write(_ name: String, in directory: String, dtype: DType, value: (Int, Int) -> Float) throws {
        let model = "\(directory)/\(name)"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try (#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1, "#
             + #""torch_dtype": "\#(dtype == .bf16 ? "bfloat16" : "float16")"}"#)
            .write(toFile: "\(model)/config.json", atomically: true, encoding: .utf8)
        let writer = try SafetensorsWriter(path: "\(model)/model.safetensors",
                                           tensors: tensors.map { ($0.name, dtype, $0.shape) })
        for (t, tensor) in tensors.enumerated() {
            let values = (0..<tensor.shape.reduce(1, *)).map { value(t, $0) }
            try values.withUnsafeBufferPointer { try writer.write(tensor.name, floats: $0) }
        }
        try writer.finish()
    }

    /// `sin(k·0.37 + seed)·2^(k mod period − 9)·(1 + seed/8)`: values over 2^(period − 10) binades.
    static func wave(_ k: Int, seed: Int, period: Int) -> Float {
        let scale: Double = pow(2, Double(k % period - 9)) * (1 + Double(seed) / 8)
        return Float(sin(Double(k) * 0.37 + Double(seed)) * scale)
    }

    /// What `merge` reports: the output shards' bytes, the run's counters, and its measured and predicted peaks.
    struct Result {
        var bytes: [Data]
        var counters: RunCounters
        var peak: Int
        var predicted: Int
    }

    /// Runs `config` on the models in `directory` on two threads within `budget` bytes, with `options`, into
    /// `directory/out-LABEL` (removed after).
    static func merge(_ config: String, in directory: String, label: String, budget: Int = Int.max / 4,
                      options: ExecutionOptions) throws -> Result {
        let output = "\(directory)/out-\(label)"
        defer { try? FileManager.default.removeItem(atPath: output) }
        return try Fixtures.inFolder(directory) {
            let catalog = LocalCheckpointCatalog()
            let plan = try Compiler.compile(try ConfigParser.parse(text: config, file: "synthetic.yml"), catalog: catalog,
                                            costs: StreamingCostModel(),
                                            options: PlannerOptions(limits: Scheduler.Limits(budgetBytes: budget,
                                                                                              threads: 2)))
            let executor = PlanExecutor(plan: plan, catalog: catalog, options: options)
            try executor.run(outputDirectory: output)
            let shards = try FileManager.default.contentsOfDirectory(atPath: output)
                .filter { $0.hasSuffix(".safetensors") }.sorted()
            XCTAssertFalse(shards.isEmpty)
            return Result(bytes: try shards.map { try Data(contentsOf: URL(fileURLWithPath: "\(output)/\($0)")) },
                          counters: executor.counters, peak: executor.memory.peakBytes,
                          predicted: plan.schedule.predictedPeakBytes)
        }
    }
}
