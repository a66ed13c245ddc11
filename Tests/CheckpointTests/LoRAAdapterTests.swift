import Checkpoint
import Foundation
import IR
import XCTest

/// PEFT adapter configs and files as PEFT 0.21 reads them: which modules get a LoRA layer, their rank, alpha and
/// scaling, which tensors replace the base's, and what is refused.
final class LoRAAdapterTests: XCTestCase {
    private func config(_ json: String) throws -> LoRAConfig {
        try LoRAConfig(bytes: Array(json.utf8), path: "adapter_config.json")
    }

    func testTargetModulesAsNamesPatternsLayersAndExclusions() throws {
        let names = try config(#"{"r": 8, "target_modules": ["q_proj", "v_proj"], "exclude_modules": ["layers.1.self_attn.v_proj"]}"#)
        XCTAssertTrue(try names.targets("model.layers.0.self_attn.q_proj", path: "c"))
        XCTAssertTrue(try names.targets("q_proj", path: "c"))
        XCTAssertFalse(try names.targets("model.layers.0.self_attn.qq_proj", path: "c"))
        XCTAssertFalse(try names.targets("model.layers.1.self_attn.v_proj", path: "c"), "excluded")
        let pattern = try config(#"{"r": 8, "target_modules": ".*\\.[02]\\.mlp\\.(up|down)_proj"}"#)
        XCTAssertTrue(try pattern.targets("model.layers.2.mlp.up_proj", path: "c"))
        XCTAssertFalse(try pattern.targets("model.layers.1.mlp.up_proj", path: "c"))
        XCTAssertFalse(try pattern.targets("model.layers.2.mlp.up_proj.extra", path: "c"), "a full match")
        let layers = try config(#"{"r": 8, "target_modules": ["q_proj"], "layers_to_transform": [1, 3], "layers_pattern": "layers"}"#)
        XCTAssertTrue(try layers.targets("model.layers.3.self_attn.q_proj", path: "c"))
        XCTAssertFalse(try layers.targets("model.layers.2.self_attn.q_proj", path: "c"))
        let one = try config(#"{"r": 8, "target_modules": ["q_proj"], "layers_to_transform": 0}"#)
        XCTAssertTrue(try one.targets("model.layers.0.self_attn.q_proj", path: "c"))
        XCTAssertFalse(try one.targets("model.layers.10.self_attn.q_proj", path: "c"))
        let saved = try config(#"{"r": 8, "target_modules": ["lm_head", "q_proj"], "modules_to_save": ["lm_head"]}"#)
        XCTAssertFalse(try saved.targets("lm_head", path: "c"), "modules to save never get LoRA layers")
        XCTAssertTrue(saved.savesModule("lm_head"))
        XCTAssertFalse(saved.savesModule("model.embed_tokens"))
        XCTAssertThrowsError(try config(#"{"r": 8, "target_modules": "(unclosed"}"#).targets("x", path: "c")) {
            XCTAssertTrue("\($0)".contains("'(unclosed' is not a regular expression"), "\($0)")
        }
    }

    func testRanksAlphasAndScalingFollowThePatterns() throws {
        let c = try config(#"{"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4, "layers\\.1\\..*v_proj": 2}, "alpha_pattern": {"v_proj": 3.5}}"#)
        XCTAssertEqual(c.rank(of: "model.layers.0.self_attn.q_proj"), 4)
        XCTAssertEqual(c.rank(of: "model.layers.1.self_attn.v_proj"), 2)
        XCTAssertEqual(c.rank(of: "model.layers.0.self_attn.v_proj"), 8)
        XCTAssertEqual(c.scale(of: "model.layers.1.self_attn.v_proj"), 3.5 / 2)
        XCTAssertEqual(c.scale(of: "model.layers.0.self_attn.k_proj"), 2)
        let rs = try config(#"{"r": 16, "lora_alpha": 8, "use_rslora": true}"#)
        XCTAssertEqual(rs.scale(of: "x"), 2)
        XCTAssertEqual(try config(#"{"r": 4}"#).scale(of: "x"), 2, "lora_alpha defaults to 8")
    }

    func testUnsupportedVariantsAndMalformedConfigsAreRefused() {
        for (json, phrase) in [
            (#"{"r": 8, "use_dora": true}"#, "use_dora: true"),
            (#"{"r": 8, "peft_type": "IA3"}"#, "peft_type IA3"),
            (#"{"r": 8, "target_parameters": ["mlp.experts.gate_up_proj"]}"#, "target_parameters"),
            (#"{"r": 0}"#, "'r' must be a whole number of at least 1"),
            (#"{"r": 8, "lora_alpha": "x"}"#, "'lora_alpha' must be a finite number"),
            (#"{"r": 8, "target_modules": 3}"#, "'target_modules' must be a list"),
            ("[1]", "not a JSON object"),
            ("{", "not valid JSON"),
        ] {
            XCTAssertThrowsError(try config(json), json) { XCTAssertTrue("\($0)".contains(phrase), "\($0)") }
        }
        XCTAssertNoThrow(try config(#"{"r": 8, "use_dora": false, "target_parameters": null, "layer_replication": []}"#))
    }

    /// The GPT-2 fixture adapter: Conv1D layers (`fan_in_fan_out`, so transposed), trained biases, rsLoRA, `ln_f` saved.
    func testFixtureAdapterModulesAndSavedTensors() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/lora/adapters/gpt2-conv1d").path
        let adapter = try LoRAAdapter(directory: directory)
        XCTAssertEqual(adapter.info.modules.count, 8)
        let attention = try XCTUnwrap(adapter.info.modules.first { $0.key == "transformer.h.0.attn.c_attn" })
        XCTAssertEqual(attention.kind, .linear)
        XCTAssertTrue(attention.transposed)
        XCTAssertEqual(attention.weightShape, [32, 96])
        XCTAssertEqual(attention.rank, 6)
        XCTAssertEqual(attention.scale, 5 / Double(6).squareRoot())
        XCTAssertEqual(attention.bias, "base_model.model.transformer.h.0.attn.c_attn.lora_B.bias")
        XCTAssertEqual(adapter.info.savedTensors, ["transformer.ln_f.weight": "base_model.model.transformer.ln_f.weight",
                                                   "transformer.ln_f.bias": "base_model.model.transformer.ln_f.bias"])
        XCTAssertEqual(adapter.tensor(attention.a)?.shape, [6, 32])
    }

    func testAdapterDirectoryWithoutConfigOrWeightsIsNamed() throws {
        let directory = NSTemporaryDirectory() + "lora-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        XCTAssertThrowsError(try LoRAAdapter(directory: directory)) {
            XCTAssertTrue("\($0)".contains("has no adapter_config.json"), "\($0)")
        }
        try #"{"r": 4}"#.write(toFile: directory + "/adapter_config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LoRAAdapter(directory: directory)) {
            XCTAssertTrue("\($0)".contains("has no adapter_model.safetensors or adapter_model.bin"), "\($0)")
        }
    }
}
