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

/// The stack, buffer and embedding rules on the namings of the architectures people merge.
final class ArchitectureRuleTests: XCTestCase {
    private func config(_ json: String) throws -> JSONValue { try JSONParser.parse(Array(json.utf8)) }

    private func layers(_ prefix: String, _ count: Int, _ suffixes: [String]) -> [String] {
        (0..<count).flatMap { i in suffixes.map { "\(prefix).\(i).\($0)" } }
    }

    func testVisionLanguageModelHasTwoStacksAndAProjectorThatIsNoStack() throws {
        let names = ["visual.patch_embed.proj.weight"] + layers("visual.blocks", 3, ["attn.qkv.weight", "norm1.weight"])
            + ["visual.merger.ln_q.weight", "visual.merger.mlp.0.weight", "visual.merger.mlp.2.weight",
               "model.embed_tokens.weight"] + layers("model.layers", 4, ["self_attn.q_proj.weight", "mlp.up_proj.weight"])
            + ["model.norm.weight", "lm_head.weight"]
        let layout = ModelLayout(tensorNames: names, config: try config(#"{"num_hidden_layers": 4, "vision_config": {"depth": 3}}"#))
        XCTAssertEqual(layout.layerPrefixes, ["visual.blocks", "model.layers"])
        XCTAssertEqual(layout.stacks.map(\.count), [3, 4])
        XCTAssertEqual(layout.primary, 1, "the stack config.json's layer count describes")
        XCTAssertEqual(layout.layerCount, 4)
        XCTAssertEqual(layout.preTensors, ["visual.patch_embed.proj.weight", "model.embed_tokens.weight"])
        XCTAssertEqual(layout.postTensors, ["visual.merger.ln_q.weight", "visual.merger.mlp.0.weight",
                                            "visual.merger.mlp.2.weight", "model.norm.weight", "lm_head.weight"])
        // Without a config the stack with most tensors is the primary one.
        XCTAssertEqual(ModelLayout(tensorNames: names).primary, 1)
    }

    func testExpertsStayInsideTheirLayer() {
        let names = ["model.embed_tokens.weight"]
            + layers("model.layers", 2, ["block_sparse_moe.gate.weight", "block_sparse_moe.experts.0.w1.weight",
                                         "block_sparse_moe.experts.1.w1.weight", "block_sparse_moe.experts.7.w1.weight"])
            + ["model.norm.weight", "lm_head.weight"]
        let layout = ModelLayout(tensorNames: names)
        XCTAssertEqual(layout.layerPrefixes, ["model.layers"])
        XCTAssertEqual(layout.layers[1].count, 4)
    }

    func testDecoderFamiliesAreOneStack() throws {
        // Llama/Mistral/Qwen2 (biases), Gemma 2 (four norms), Phi-2 (dense, final_layernorm), GPT-NeoX, GPT-2.
        let families: [(String, [String], [String], [String])] = [
            ("model.layers", ["self_attn.q_proj.weight", "self_attn.q_proj.bias", "mlp.down_proj.weight"],
             ["model.embed_tokens.weight"], ["model.norm.weight", "lm_head.weight"]),
            ("model.layers", ["pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight", "self_attn.o_proj.weight"],
             ["model.embed_tokens.weight"], ["model.norm.weight"]),
            ("model.layers", ["self_attn.dense.weight", "mlp.fc1.weight", "input_layernorm.bias"],
             ["model.embed_tokens.weight"], ["model.final_layernorm.weight", "lm_head.weight", "lm_head.bias"]),
            ("gpt_neox.layers", ["attention.query_key_value.weight", "mlp.dense_h_to_4h.weight"],
             ["gpt_neox.embed_in.weight"], ["gpt_neox.final_layer_norm.weight", "embed_out.weight"]),
            ("transformer.h", ["attn.c_attn.weight", "mlp.c_fc.weight"],
             ["transformer.wte.weight", "transformer.wpe.weight"], ["transformer.ln_f.weight"]),
        ]
        for (prefix, suffixes, pre, post) in families {
            let layout = ModelLayout(tensorNames: pre + layers(prefix, 3, suffixes) + post)
            XCTAssertEqual(layout.layerPrefixes, [prefix])
            XCTAssertEqual(layout.layerCount, 3, prefix)
            XCTAssertEqual(layout.preTensors, pre, prefix)
            XCTAssertEqual(layout.postTensors, post, prefix)
        }
    }

    func testBuffersFollowMergekitsArchitectureForTheModelType() throws {
        let llama = ["model.embed_tokens.weight", "model.layers.0.self_attn.rotary_emb.inv_freq",
                     "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"]
        let l = ModelLayout(tensorNames: llama, config: try config(#"{"model_type": "llama"}"#))
        XCTAssertEqual(l.droppedBuffers, ["model.layers.0.self_attn.rotary_emb.inv_freq"])
        XCTAssertEqual(l.layers[0], ["model.layers.0.self_attn.q_proj.weight"])

        let gpt2 = ["transformer.wte.weight", "transformer.h.0.attn.bias", "transformer.h.0.attn.masked_bias",
                    "transformer.h.0.attn.c_attn.bias", "transformer.h.0.attn.c_attn.weight"]
        let g = ModelLayout(tensorNames: gpt2, config: try config(#"{"model_type": "gpt2"}"#))
        XCTAssertEqual(g.droppedBuffers, ["transformer.h.0.attn.bias", "transformer.h.0.attn.masked_bias"])
        XCTAssertEqual(g.layers[0], ["transformer.h.0.attn.c_attn.bias", "transformer.h.0.attn.c_attn.weight"])

        let neox = ["gpt_neox.embed_in.weight", "gpt_neox.layers.0.attention.bias", "gpt_neox.layers.0.attention.masked_bias",
                    "gpt_neox.layers.0.attention.rotary_emb.inv_freq", "gpt_neox.layers.0.attention.dense.weight"]
        let n = ModelLayout(tensorNames: neox, config: try config(#"{"model_type": "gpt_neox"}"#))
        XCTAssertEqual(n.keptBuffers, Array(neox[1...3]))
        XCTAssertEqual(n.droppedBuffers, [])

        let bert = ["embeddings.word_embeddings.weight", "embeddings.position_ids",
                    "encoder.layer.0.attention.self.query.weight", "encoder.layer.0.attention.output.dense.bias",
                    "pooler.dense.weight"]
        let b = ModelLayout(tensorNames: bert, config: try config(#"{"model_type": "bert", "num_hidden_layers": 1}"#))
        XCTAssertEqual(b.keptBuffers, ["embeddings.position_ids"])
        XCTAssertEqual(b.layerPrefixes, ["encoder.layer"])
        XCTAssertEqual(b.layers[0].count, 2, "attention.output.dense.bias is a parameter")
        let distil = ModelLayout(tensorNames: bert, config: try config(#"{"model_type": "distilbert"}"#))
        XCTAssertEqual(distil.droppedBuffers, ["embeddings.position_ids"])
    }
}
