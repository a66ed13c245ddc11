import Executor
import Foundation
import IR
import XCTest

/// Task vectors computed as their minuend is read (`LoadSubtractChunkKernel`) have the bits of a load then a
/// subtraction: bf16 inputs merged in bf16 (the direct bf16 loop), f16 inputs merged in f16 (decoded, then
/// subtracted in place), an input cast to the merge dtype first (not fused), a task vector kept whole across SCE's
/// passes (fused in the sweep that computes it), and an infinite input value, which the fused read still reports
/// (else the run would stop at a non-finite output).
final class LoadSubtractFusionTests: XCTestCase {
    /// Writes `base`, `a`, `b` (bf16) and `base16`, `c`, `d` (f16) into `directory` (`SyntheticLlama.wave`, period
    /// 19), and `b` holds +∞ at element 5 of the first tensor when `infinite`.
    private static func writeModels(in directory: String, infinite: Bool) throws {
        for (name, seed, dtype) in [("base", 0, DType.bf16), ("a", 1, .bf16), ("b", 2, .bf16), ("base16", 0, .f16),
                                    ("c", 3, .f16), ("d", 4, .f16)] {
            try SyntheticLlama.write(name, in: directory, dtype: dtype) { t, k in
                infinite && name == "b" && t == 0 && k == 5 ? .infinity : SyntheticLlama.wave(k, seed: seed, period: 19)
            }
        }
    }

    /// Runs `config` on the models in `directory` with the fusion on or off; returns the output shards' bytes and
    /// how many subtractions were fused.
    private func merge(_ config: String, in directory: String, fusing: Bool) throws -> (bytes: [Data], fused: Int) {
        var options = ExecutionOptions(overwrite: true)
        options.fusesLoadSubtractions = fusing
        let result = try SyntheticLlama.merge(config, in: directory, label: "\(fusing)", options: options)
        return (result.bytes, result.counters.fusedLoadSubtractions)
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
                XCTAssertEqual(fused.fused, c.fused * SyntheticLlama.tensors.count, label)
                XCTAssertEqual(plain.fused, 0, label)
                XCTAssertEqual(fused.bytes, plain.bytes, label)
            }
        }
    }
}
