import Checkpoint
import Executor
import Foundation
import IR
import Planner
import XCTest

/// `base+adapter` references: PEFT LoRA adapters applied as `lora_delta` nodes give mergekit's tensors bit for bit
/// (its PEFT `merge_and_unload` copy), stream within the predicted memory, and fail clearly when they cannot apply.
final class LoRATests: XCTestCase {
    /// The cases of `Tests/Fixtures/lora`, each with its `--lora-merge-dtype` (from the case's `options` file).
    static let cases: [(name: String, dtype: DType?)] = [("lora_ranks_bf16", nil), ("lora_conv1d_fp16", .f16)]

    private func merge(_ name: String, dtype: DType?, into out: String,
                       limits: Scheduler.Limits? = nil) throws -> (plan: Plan, peakBytes: Int) {
        let text = try String(contentsOfFile: "\(Fixtures.lora)/cases/\(name)/config.yml", encoding: .utf8)
        return try Fixtures.merge(configText: text, file: "cases/\(name)/config.yml", into: out, limits: limits,
                                  in: Fixtures.lora, loraMergeDType: dtype)
    }

    /// Bit for bit: ranks 4, 8, 193 and 400 (MKL's block sums), `alpha_pattern`, an embedding LoRA (rounded before
    /// it is added), a regex `target_modules`, rsLoRA, `fan_in_fan_out`, a trained bias, `modules_to_save`, a bf16
    /// base and `--lora-merge-dtype float16`; and `rw_lora`, a LoRA model inside a TIES merge.
    func testAdaptersGiveMergekitsTensorsBitForBit() throws {
        var runs: [(out: String, expected: String)] = []
        for (name, dtype) in Self.cases {
            let out = Fixtures.temporaryDirectory(name)
            try merge(name, dtype: dtype, into: out)
            runs.append((out, "\(Fixtures.lora)/cases/\(name)/expected"))
        }
        let out = Fixtures.temporaryDirectory("rw_lora")
        try Fixtures.merge(case: "rw_lora", into: out)
        runs.append((out, Fixtures.expected("rw_lora")))
        defer { for run in runs { try? FileManager.default.removeItem(atPath: run.out) } }
        for (out, expected) in runs {
            let actual = try CheckpointComparison.tensors(in: out)
            let reference = try CheckpointComparison.tensors(in: expected)
            XCTAssertEqual(Set(actual.keys), Set(reference.keys), expected)
            for (name, (type, values)) in reference {
                XCTAssertEqual(actual[name]?.0, type, name)
                XCTAssertEqual(actual[name]?.1.map(\.bitPattern), values.map(\.bitPattern), "\(expected): \(name)")
            }
            XCTAssertEqual(try CheckpointComparison.configProblems(actual: out, expected: expected), [], expected)
        }
    }

    /// The low-rank product holds both factors (and, above rank 192, a row of partial sums per thread) as it
    /// declares: under a budget of one row and with several threads the run holds exactly the predicted peak and
    /// writes the same bytes as a whole-tensor run.
    func testLoRAMergesStreamWithinTheExactPrediction() throws {
        for (name, dtype) in Self.cases {
            let text = try String(contentsOfFile: "\(Fixtures.lora)/cases/\(name)/config.yml", encoding: .utf8)
            var options = PlannerOptions(limits: Scheduler.Limits(threads: 1))
            options.loraMergeDType = dtype
            let unbounded = try Fixtures.compile(text, options: options, in: Fixtures.lora)
            let smallest = unbounded.schedule.groups.map { $0.bytes(rows: 1) }.max()!
            var outputs: [Data] = []
            for limits in [Scheduler.Limits(threads: 3), Scheduler.Limits(budgetBytes: smallest, threads: 1),
                           Scheduler.Limits(maxChunkElements: 1, threads: 2)] {
                let out = Fixtures.temporaryDirectory("lora-peak")
                defer { try? FileManager.default.removeItem(atPath: out) }
                let (plan, peak) = try merge(name, dtype: dtype, into: out, limits: limits)
                XCTAssertEqual(peak, plan.schedule.predictedPeakBytes, "\(name), \(limits)")
                XCTAssertLessThanOrEqual(plan.schedule.predictedPeakBytes, limits.budgetBytes)
                outputs.append(try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors")))
            }
            XCTAssertEqual(Set(outputs).count, 1, name)
        }
    }

    /// `--dump-ir` shows the adapter as an input and each update as a `lora_delta` node with its rank and scale,
    /// added to the base's tensor; `plan --format json` names the adapter's kind.
    func testDumpShowsTheLowRankProduct() throws {
        let text = try String(contentsOfFile: "\(Fixtures.lora)/cases/lora_conv1d_fp16/config.yml", encoding: .utf8)
        var options = PlannerOptions()
        options.loraMergeDType = .f16
        let dump = try Fixtures.compile(text, options: options, in: Fixtures.lora).dump()
        XCTAssertTrue(dump.contains("// @m1 = adapters/gpt2-conv1d  ("), dump)
        XCTAssertTrue(dump.contains("LoRA adapter"))
        // rsLoRA: lora_alpha 5 / √6.
        let scale = formatAttribute(5 / Double(6).squareRoot())
        XCTAssertTrue(dump.contains(
            "= lora_delta(rank 6, scale \(scale), transposed) @m1 \"base_model.model.transformer.h.0.attn.c_attn.lora_B.weight\" · "
                + "\"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight\" : f32[32,96]"), dump)
        XCTAssertTrue(dump.contains("= scale(\(scale))"), "the trained bias")
        XCTAssertTrue(dump.contains("load @m1 \"base_model.model.transformer.ln_f.weight\""), "modules_to_save")
    }

    /// Adapters that cannot apply stop at compile time, naming the reference, the adapter and what is wrong.
    func testAdaptersThatCannotApplyAreErrors() throws {
        let directory = Fixtures.temporaryDirectory("bad-adapters")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = "\(Fixtures.lora)/adapters/llama-ranks"
        let fm = FileManager.default
        func adapter(_ name: String, _ edit: (String) -> String) throws -> String {
            let path = "\(directory)/\(name)"
            try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            try fm.copyItem(atPath: "\(source)/adapter_model.safetensors", toPath: "\(path)/adapter_model.safetensors")
            let config = try String(contentsOfFile: "\(source)/adapter_config.json", encoding: .utf8)
            try edit(config).write(toFile: "\(path)/adapter_config.json", atomically: true, encoding: .utf8)
            return path
        }
        let dora = try adapter("dora") { $0.replacingOccurrences(of: "\"use_dora\": false", with: "\"use_dora\": true") }
        let rank = try adapter("rank") { $0.replacingOccurrences(of: "\"q_proj\": 193", with: "\"q_proj\": 16") }
        let cases: [(reference: String, phrases: [String])] = [
            ("models/llama-ft-a-bf16+\(dora)", ["not implemented", "use_dora: true"]),
            ("models/llama-ft-a-bf16+\(rank)", ["rank 16", "[193, 32]"]),
            ("models/gpt2-a+\(Fixtures.lora)/adapters/llama-ranks",
             ["LoRA adapter", "model.embed_tokens", "was it trained for 'models/gpt2-a'?"]),
            ("models/llama-base+models/llama-ft-a", ["no adapter_config.json"]),
            ("models/llama-base+\(directory)/missing", ["LoRA adapter", "no such directory"]),
            ("models/llama-base+a+b", ["is not a model reference mergekit reads"]),
        ]
        for (reference, phrases) in cases {
            let config = "models:\n  - model: \(reference)\nmerge_method: passthrough\n"
            XCTAssertThrowsError(try Fixtures.compile(config, file: "lora.yml"), reference) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("lora.yml:2:12: model '"), message)
                for phrase in phrases { XCTAssertTrue(message.contains(phrase), "\(reference): \(message)") }
            }
        }
    }
}
