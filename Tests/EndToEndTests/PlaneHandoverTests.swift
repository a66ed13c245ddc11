import Executor
import Foundation
import IR
import XCTest

/// SCE's task vectors and mask kept whole as bf16 planes and handed packed to its mix (`ChunkOperands.planes`,
/// `ExecutionOptions.handsOverPlanes`) give the bytes of unpacking them into chunk buffers: masked and unmasked, on
/// tensors whose rows are not a multiple of sixteen lanes and one of more than a parallel block, with a budget that
/// keeps everything whole and one that keeps less; an f16 merge hands nothing over. (With `select_topk` 1 the plan
/// keeps no task vector whole: nothing to hand over.) The measured peak stays the predicted one: a plane handed over
/// still takes its planned chunk buffer.
final class PlaneHandoverTests: XCTestCase {
    /// Writes `base`, `a`, `b`, `c` in `dtype` into `directory`: `SyntheticLlama.wave` of period 13 (squares within
    /// f16's range), with runs of equal values (`seed / 4` at `k mod 97 < 5`) so that variances tie.
    private static func writeModels(in directory: String, dtype: DType) throws {
        for (name, seed) in [("base", 0), ("a", 1), ("b", 2), ("c", 3)] {
            try SyntheticLlama.write(name, in: directory, dtype: dtype) { _, k in
                k % 97 < 5 ? Float(seed) / 4 : SyntheticLlama.wave(k, seed: seed, period: 13)
            }
        }
    }

    /// Runs `config` in `directory` with the handover on or off within `budget` bytes; returns the shards' bytes,
    /// how many planes were handed over, and the measured and predicted peaks.
    private func merge(_ config: String, in directory: String, handingOver: Bool,
                       budget: Int) throws -> (bytes: [Data], handed: Int, peak: Int, predicted: Int) {
        var options = ExecutionOptions(overwrite: true)
        options.handsOverPlanes = handingOver
        let result = try SyntheticLlama.merge(config, in: directory, label: "\(handingOver)", budget: budget,
                                              options: options)
        return (result.bytes, result.counters.planesHandedOver, result.peak, result.predicted)
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
