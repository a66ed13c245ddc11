import Checkpoint
import Executor
import Foundation
import IR
import Parser
import Planner
import XCTest

/// SCE's task vectors and mask kept whole as bf16 planes and handed packed to its mix (`ChunkOperands.planes`,
/// `ExecutionOptions.handsOverPlanes`) give the bytes of unpacking them into chunk buffers: masked and unmasked, on
/// tensors whose rows are not a multiple of sixteen lanes and one of more than a parallel block, with a budget that
/// keeps everything whole and one that keeps less; an f16 merge hands nothing over. (With `select_topk` 1 the plan
/// keeps no task vector whole: nothing to hand over.) The measured peak stays the predicted one: a plane handed over
/// still takes its planned chunk buffer.
final class PlaneHandoverTests: XCTestCase {
    private static let tensors: [(name: String, shape: [Int])] = [
        ("model.layers.0.self_attn.q_proj.weight", [37, 29]),
        ("model.layers.0.input_layernorm.weight", [29]),
        ("model.layers.0.mlp.up_proj.weight", [300, 229]),
    ]

    /// Writes `base`, `a`, `b`, `c` in `dtype` into `directory`: element k of seed s is
    /// `sin(k·0.37 + s)·2^(k mod 13 − 9)·(1 + s/8)` (squares within f16's range), with runs of equal values so that
    /// variances tie.
    private static func writeModels(in directory: String, dtype: DType) throws {
        for (name, seed) in [("base", 0), ("a", 1), ("b", 2), ("c", 3)] {
            let model = "\(directory)/\(name)"
            try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
            try (#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1, "#
                 + #""torch_dtype": "\#(dtype == .bf16 ? "bfloat16" : "float16")"}"#)
                .write(toFile: "\(model)/config.json", atomically: true, encoding: .utf8)
            let writer = try SafetensorsWriter(path: "\(model)/model.safetensors",
                                               tensors: tensors.map { ($0.name, dtype, $0.shape) })
            for tensor in tensors {
                var values: [Float] = []
                for k in 0..<tensor.shape.reduce(1, *) {
                    let wave = sin(Double(k) * 0.37 + Double(seed))
                    let scale: Double = pow(2, Double(k % 13 - 9)) * (1 + Double(seed) / 8)
                    values.append(k % 97 < 5 ? Float(seed) / 4 : Float(wave * scale))
                }
                try values.withUnsafeBufferPointer { try writer.write(tensor.name, floats: $0) }
            }
            try writer.finish()
        }
    }

    /// Runs `config` in `directory` with the handover on or off within `budget` bytes; returns the shards' bytes and
    /// how many planes were handed over.
    private func merge(_ config: String, in directory: String, handingOver: Bool,
                       budget: Int) throws -> (bytes: [Data], handed: Int, peak: Int, predicted: Int) {
        let output = "\(directory)/out-\(handingOver)"
        defer { try? FileManager.default.removeItem(atPath: output) }
        return try Fixtures.inFolder(directory) {
            let catalog = LocalCheckpointCatalog()
            let plan = try Compiler.compile(try ConfigParser.parse(text: config, file: "handover.yml"), catalog: catalog,
                                            costs: StreamingCostModel(),
                                            options: PlannerOptions(limits: Scheduler.Limits(budgetBytes: budget,
                                                                                              threads: 2)))
            var options = ExecutionOptions(overwrite: true)
            options.handsOverPlanes = handingOver
            let executor = PlanExecutor(plan: plan, catalog: catalog, options: options)
            try executor.run(outputDirectory: output)
            let shards = try FileManager.default.contentsOfDirectory(atPath: output)
                .filter { $0.hasSuffix(".safetensors") }.sorted()
            XCTAssertFalse(shards.isEmpty)
            return (try shards.map { try Data(contentsOf: URL(fileURLWithPath: "\(output)/\($0)")) },
                    executor.counters.planesHandedOver, executor.memory.peakBytes, plan.schedule.predictedPeakBytes)
        }
    }

    /// A SLERP of two TIES stages (`slerp_of_ties`), whose stage results are kept whole as bf16 planes: the same
    /// bytes and peak with the handover on and off, and the planes handed to SLERP's dot products and output.
    func testChainStageResultsHandedToSLERP() throws {
        let directory = Fixtures.temporaryDirectory("handover-chain")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.writeModels(in: directory, dtype: .bf16)
        func ties(_ name: String, _ models: [String]) -> String {
            "name: \(name)\nmerge_method: ties\nbase_model: base\nmodels:\n"
                + models.map { "  - model: \($0)\n    parameters: {density: 0.5, weight: 0.5}\n" }.joined()
                + "dtype: bfloat16\n"
        }
        let config = ties("ties-ab", ["a", "b"]) + "---\n" + ties("ties-bc", ["b", "c"]) + "---\n"
            + "merge_method: slerp\nbase_model: ties-ab\nmodels:\n  - model: ties-ab\n  - model: ties-bc\n"
            + "parameters: {t: 0.3}\ndtype: bfloat16\n"
        let handed = try merge(config, in: directory, handingOver: true, budget: Int.max / 4)
        let plain = try merge(config, in: directory, handingOver: false, budget: Int.max / 4)
        XCTAssertEqual(handed.bytes, plain.bytes)
        XCTAssertGreaterThan(handed.handed, 0)
        XCTAssertEqual(plain.handed, 0)
        XCTAssertEqual(handed.peak, handed.predicted)
    }

    func testHandedOverPlanesGiveTheUnpackedBytes() throws {
        for dtype in [DType.bf16, .f16] {
            let directory = Fixtures.temporaryDirectory("handover")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try Self.writeModels(in: directory, dtype: dtype)
            for topK in ["0.3", "1"] {
                for budget in [Int.max / 4, 6 << 20] {
                    let models = ["a", "b", "c"].map { "  - model: \($0)\n" }.joined()
                    let config = "models:\n\(models)merge_method: sce\nbase_model: base\n"
                        + "parameters: {select_topk: \(topK)}\ndtype: \(dtype == .bf16 ? "bfloat16" : "float16")\n"
                    let label = "\(dtype) select_topk \(topK), budget \(budget)"
                    let handed = try merge(config, in: directory, handingOver: true, budget: budget)
                    let plain = try merge(config, in: directory, handingOver: false, budget: budget)
                    XCTAssertEqual(handed.bytes, plain.bytes, label)
                    XCTAssertEqual(plain.handed, 0, label)
                    // A plane handed over still takes the chunk buffer the plan counts for it.
                    XCTAssertEqual(handed.peak, handed.predicted, label)
                    XCTAssertEqual(plain.peak, plain.predicted, label)
                    if dtype == .bf16, topK != "1", budget > 6 << 20 {
                        XCTAssertGreaterThan(handed.handed, 0, label)
                    } else if dtype == .f16 {
                        XCTAssertEqual(handed.handed, 0, label)
                    }
                }
            }
        }
    }
}
