import Checkpoint
import IR
import XCTest
@testable import Planner

/// Splitting tensor names into pre / layers / post, the layer-count key of `config.json`, and layer renaming.
final class ModelLayoutTests: XCTestCase {
    func testLlamaLayout() {
        let names = ["model.embed_tokens.weight",
                     "model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight",
                     "model.layers.1.self_attn.q_proj.weight", "model.layers.1.mlp.up_proj.weight",
                     "model.norm.weight", "lm_head.weight"]
        let layout = ModelLayout(tensorNames: names)
        XCTAssertEqual(layout.preTensors, ["model.embed_tokens.weight"])
        XCTAssertEqual(layout.layers, [
            ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight"],
            ["model.layers.1.self_attn.q_proj.weight", "model.layers.1.mlp.up_proj.weight"],
        ])
        XCTAssertEqual(layout.postTensors, ["model.norm.weight", "lm_head.weight"])
        XCTAssertEqual(layout.layerCount, 2)
        XCTAssertEqual(layout.layerPrefixes, ["model.layers"])
    }

    func testLayersAreGroupedByIndexWhateverTheFileOrder() {
        let names = ["lm_head.weight", "model.layers.1.mlp.up_proj.weight", "model.norm.weight",
                     "model.layers.0.mlp.up_proj.weight", "model.embed_tokens.weight",
                     "model.layers.1.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight"]
        let layout = ModelLayout(tensorNames: names)
        XCTAssertEqual(layout.preTensors, ["model.embed_tokens.weight"])
        XCTAssertEqual(layout.layers, [
            ["model.layers.0.mlp.up_proj.weight", "model.layers.0.self_attn.q_proj.weight"],
            ["model.layers.1.mlp.up_proj.weight", "model.layers.1.self_attn.q_proj.weight"],
        ])
        XCTAssertEqual(layout.postTensors, ["lm_head.weight", "model.norm.weight"])
    }

    func testGPT2Layout() {
        let names = ["transformer.wte.weight", "transformer.wpe.weight",
                     "transformer.h.0.ln_1.weight", "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias",
                     "transformer.h.1.ln_1.weight", "transformer.h.1.attn.c_attn.weight", "transformer.h.1.attn.c_attn.bias",
                     "transformer.h.2.ln_1.weight", "transformer.h.2.attn.c_attn.weight", "transformer.h.2.attn.c_attn.bias",
                     "transformer.ln_f.weight", "transformer.ln_f.bias"]
        let layout = ModelLayout(tensorNames: names)
        XCTAssertEqual(layout.preTensors, ["transformer.wte.weight", "transformer.wpe.weight"])
        XCTAssertEqual(layout.layerCount, 3)
        XCTAssertEqual(layout.layers[2], ["transformer.h.2.ln_1.weight", "transformer.h.2.attn.c_attn.weight",
                                          "transformer.h.2.attn.c_attn.bias"])
        XCTAssertEqual(layout.postTensors, ["transformer.ln_f.weight", "transformer.ln_f.bias"])
        XCTAssertEqual(layout.layerPrefixes, ["transformer.h"])
    }

    func testNoLayers() {
        let layout = ModelLayout(tensorNames: ["embed.weight", "head.weight"])
        XCTAssertEqual(layout.layerCount, 0)
        XCTAssertEqual(layout.preTensors, ["embed.weight"])
        XCTAssertEqual(layout.postTensors, ["head.weight"])
    }

    func testLayerCountKey() throws {
        let llama = try JSONParser.parse(Array(#"{"hidden_size": 4, "num_attention_heads": 2, "num_hidden_layers": 32}"#.utf8))
        XCTAssertEqual(ModelLayout.layerCountKey(in: llama), "num_hidden_layers")
        let gpt2 = try JSONParser.parse(Array(#"{"n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024}"#.utf8))
        XCTAssertEqual(ModelLayout.layerCountKey(in: gpt2), "n_layer")
        let other = try JSONParser.parse(Array(#"{"num_layers": 6}"#.utf8))
        XCTAssertEqual(ModelLayout.layerCountKey(in: other), "num_layers")
        let nLayers = try JSONParser.parse(Array(#"{"n_layers": 6}"#.utf8))
        XCTAssertEqual(ModelLayout.layerCountKey(in: nLayers), "n_layers")
    }

    func testLayerCountKeyIgnoresLookAlikes() throws {
        let config = try JSONParser.parse(Array(#"""
            {"num_attention_heads": 2, "num_key_value_heads": 2, "num_layers": "six", "n_layer": 1.5,
             "num_decoder_layers": 6, "num_encoder_layers": 6, "n_inner_layer": 2, "max_layers": 4,
             "text_config": {"num_hidden_layers": 3}}
            """#.utf8))
        XCTAssertNil(ModelLayout.layerCountKey(in: config))
        XCTAssertNil(ModelLayout.layerCountKey(in: .array([])))
    }

    func testLayerTensorNameSplit() throws {
        let split = try XCTUnwrap(LayerTensorName("model.layers.12.mlp.up_proj.weight"))
        XCTAssertEqual(split.prefix, "model.layers")
        XCTAssertEqual(split.layer, 12)
        XCTAssertEqual(split.suffix, "mlp.up_proj.weight")
        XCTAssertEqual(split.name(atLayer: 3), "model.layers.3.mlp.up_proj.weight")
        XCTAssertEqual(split.name(atLayer: 12), "model.layers.12.mlp.up_proj.weight")

        let gpt2 = try XCTUnwrap(LayerTensorName("transformer.h.0.attn.c_attn.bias"))
        XCTAssertEqual(gpt2.prefix, "transformer.h")
        XCTAssertEqual(gpt2.layer, 0)
        XCTAssertEqual(gpt2.suffix, "attn.c_attn.bias")
        XCTAssertEqual(gpt2.name(atLayer: 10), "transformer.h.10.attn.c_attn.bias")
    }

    func testLayerTensorNameSplitsAtFirstIndex() throws {
        let moe = try XCTUnwrap(LayerTensorName("model.layers.2.block_sparse_moe.experts.7.w1.weight"))
        XCTAssertEqual(moe.layer, 2)
        XCTAssertEqual(moe.suffix, "block_sparse_moe.experts.7.w1.weight")
        XCTAssertEqual(moe.name(atLayer: 0), "model.layers.0.block_sparse_moe.experts.7.w1.weight")
    }

    func testNonLayerNames() {
        XCTAssertNil(LayerTensorName("model.norm.weight"))
        XCTAssertNil(LayerTensorName("lm_head.weight"))
        XCTAssertNil(LayerTensorName("model.layers.x.weight"))
        XCTAssertNil(LayerTensorName("model.layers.-1.weight"))
        XCTAssertNil(LayerTensorName("model.layers.+1.weight"))
        XCTAssertNil(LayerTensorName("3.weight"), "an index must have a prefix")
        XCTAssertNil(LayerTensorName("model.weight.3"), "an index must have a suffix")
        XCTAssertNil(LayerTensorName("model.layers.٣.weight"), "only ASCII digits are indices")
    }
}
