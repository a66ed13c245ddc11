import Checkpoint
import IR
import XCTest
@testable import Planner

/// Checkpoints as the Hub serves them: tied output heads, wrapper prefixes, vision towers beside text decoders,
/// buffers that are not parameters.
final class ArchitectureLoweringTests: PlannerTestCase {
    private func tied(_ layers: Int = 2) -> FakeModel {
        var m = FakeModel(layers: layers)
        m.drop = ["lm_head.weight"]
        m.configJSON = #"{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 2, "tie_word_embeddings": true}"#
        return m
    }

    private func linear(_ first: String, _ second: String) throws -> Plan {
        try fx.compile("""
            merge_method: linear
            models:
              - model: $\(first)
                parameters: {weight: 0.5}
              - model: $\(second)
                parameters: {weight: 0.5}
            """)
    }

    /// mergekit's `lm_head.weight` is optional with the embedding as tied name: written when any input has it, the
    /// embedding standing in for the input that ties them, whichever model comes first.
    func testTiedEmbeddingStandsInForTheMissingHeadInAnyOrder() throws {
        fx.add("U", FakeModel(layers: 2))
        fx.add("T", tied())
        for (first, second, tiedIndex) in [("U", "T", 1), ("T", "U", 0)] {
            let plan = try linear(first, second)
            XCTAssertEqual(plan.outputNames, llamaNames(layers: 2), "\(first) first")
            let head = try plan.node(of: "lm_head.weight")
            XCTAssertEqual(plan.load(head.operands[tiedIndex])?.tensor, "model.embed_tokens.weight")
            XCTAssertEqual(plan.load(head.operands[1 - tiedIndex])?.tensor, "lm_head.weight")
            // The merged head is not the merged embedding: the output's config must not tie them, whichever
            // model's config it starts from.
            let config = try JSONParser.parse(Array(try XCTUnwrap(plan.mainTarget?.config).utf8))
            XCTAssertEqual(config["tie_word_embeddings"]?.boolValue, false, "\(first) first")
        }
    }

    /// A frankenmerge ending in a tied model writes no head (its last slice has none, as in mergekit): the output
    /// config ties it, even when the first model's config does not.
    func testAFrankenmergeEndingInATiedModelTiesItsConfig() throws {
        fx.add("U", FakeModel(layers: 2))
        fx.add("T", tied())
        let plan = try fx.compile("""
            merge_method: passthrough
            slices:
              - sources: [{model: $U, layer_range: [0, 2]}]
              - sources: [{model: $T, layer_range: [1, 2]}]
            """)
        XCTAssertFalse(plan.outputNames.contains("lm_head.weight"))
        let config = try JSONParser.parse(Array(try XCTUnwrap(plan.mainTarget?.config).utf8))
        XCTAssertEqual(config["tie_word_embeddings"]?.boolValue, true)
    }

    func testAModelThatDoesNotTieItsHeadMustHaveIt() throws {
        fx.add("U", FakeModel(layers: 2))
        var untied = FakeModel(layers: 2)
        untied.drop = ["lm_head.weight"]
        untied.configJSON = #"{"num_hidden_layers": 2, "tie_word_embeddings": false}"#
        fx.add("N", untied)
        fx.assertError("""
            merge_method: linear
            models:
              - model: $U
                parameters: {weight: 0.5}
              - model: $N
                parameters: {weight: 0.5}
            """, prefix: "t.yml:", contains: ["tensor 'lm_head.weight' is missing from model"])
    }

    /// GPT-2 from the Hub (`h.0.…`, `wte`) and from a Trainer (`transformer.h.0.…`) name the same tensors; the
    /// output takes the canonical, wrapped names, whichever comes first.
    func testWrapperPrefixesAreAliases() throws {
        func gpt2(wrapped: Bool) -> FakeModel {
            var m = FakeModel(layers: 2)
            let p = wrapped ? "transformer." : ""
            var tensors: [(String, [Int])] = [("\(p)wte.weight", [8, 4]), ("\(p)wpe.weight", [6, 4])]
            for i in 0..<2 { tensors += [("\(p)h.\(i).attn.c_attn.weight", [4, 12]), ("\(p)h.\(i).ln_1.weight", [4])] }
            m.customTensors = tensors + [("\(p)ln_f.weight", [4])]
            m.configJSON = #"{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 2}"#
            return m
        }
        fx.add("HUB", gpt2(wrapped: false))
        fx.add("TRAINER", gpt2(wrapped: true))
        let expected = ["transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.attn.c_attn.weight",
                        "transformer.h.0.ln_1.weight", "transformer.h.1.attn.c_attn.weight", "transformer.h.1.ln_1.weight",
                        "transformer.ln_f.weight"]
        for (first, second) in [("HUB", "TRAINER"), ("TRAINER", "HUB")] {
            let plan = try linear(first, second)
            XCTAssertEqual(plan.outputNames, expected, "\(first) first")
            let node = try plan.node(of: "transformer.h.1.ln_1.weight")
            XCTAssertEqual(Set(node.operands.compactMap { plan.load($0)?.tensor }),
                           ["h.1.ln_1.weight", "transformer.h.1.ln_1.weight"])
        }
    }

    /// A vision tower of 3 blocks beside a text decoder of 4 layers: a gradient runs over each stack's own depth.
    func testGradientsRunOverEachStacksOwnDepth() throws {
        var vl = FakeModel(layers: 4)
        var tensors: [(String, [Int])] = [("visual.patch_embed.proj.weight", [4, 4])]
        for i in 0..<3 { tensors.append(("visual.blocks.\(i).attn.qkv.weight", [4, 4])) }
        tensors += [("visual.merger.mlp.0.weight", [4, 4]), ("visual.merger.mlp.2.weight", [4, 4]),
                    ("model.embed_tokens.weight", [8, 4])]
        for i in 0..<4 { tensors.append(("model.layers.\(i).self_attn.q_proj.weight", [4, 4])) }
        tensors += [("model.norm.weight", [4]), ("lm_head.weight", [8, 4])]
        vl.customTensors = tensors
        vl.configJSON = #"{"num_hidden_layers": 4, "vision_config": {"depth": 3}}"#
        fx.add("A", vl)
        fx.add("B", vl)
        let plan = try fx.compile("""
            merge_method: slerp
            base_model: $A
            models:
              - model: $A
              - model: $B
            parameters:
              t: [0, 1]
            """)
        func t(_ name: String) throws -> Double? {
            if case .slerp(let t) = try plan.node(of: name).op { return t }
            return nil
        }
        XCTAssertEqual(try t("visual.blocks.0.attn.qkv.weight"), 0)
        XCTAssertEqual(try t("visual.blocks.1.attn.qkv.weight"), 0.5)
        XCTAssertEqual(try t("visual.blocks.2.attn.qkv.weight"), 1)
        XCTAssertEqual(try XCTUnwrap(try t("model.layers.1.self_attn.q_proj.weight")), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(try t("model.layers.3.self_attn.q_proj.weight"), 1)
        XCTAssertEqual(try t("visual.merger.mlp.2.weight"), 0, "a projector's numbered modules are not a stack")
        XCTAssertEqual(plan.mainTarget.flatMap { try? configValue($0, "num_hidden_layers") }, 4)
    }

    /// GPT-NeoX keeps its masks and rotary frequencies (mergekit's architecture lists them): copied from the base,
    /// never merged; GPT-2's old masks are dropped.
    func testKeptBuffersAreCopiedNotMerged() throws {
        var neox = FakeModel(layers: 1)
        neox.customTensors = [("gpt_neox.embed_in.weight", [8, 4]), ("gpt_neox.layers.0.attention.bias", [1, 1, 4, 4]),
                              ("gpt_neox.layers.0.attention.rotary_emb.inv_freq", [2]),
                              ("gpt_neox.layers.0.attention.dense.weight", [4, 4]), ("embed_out.weight", [8, 4])]
        neox.configJSON = #"{"model_type": "gpt_neox", "num_hidden_layers": 1}"#
        fx.add("A", neox)
        fx.add("B", neox)
        let plan = try linear("A", "B")
        XCTAssertEqual(plan.outputNames, ["gpt_neox.embed_in.weight", "gpt_neox.layers.0.attention.dense.weight",
                                          "embed_out.weight", "gpt_neox.layers.0.attention.bias",
                                          "gpt_neox.layers.0.attention.rotary_emb.inv_freq"])
        let mask = try plan.node(of: "gpt_neox.layers.0.attention.bias")
        XCTAssertEqual(mask.op, .load(model: 0, tensor: "gpt_neox.layers.0.attention.bias"))

        var gpt2 = FakeModel(layers: 1)
        gpt2.customTensors = [("transformer.wte.weight", [8, 4]), ("transformer.h.0.attn.bias", [1, 1, 4, 4]),
                              ("transformer.h.0.attn.c_attn.weight", [4, 12])]
        gpt2.configJSON = #"{"model_type": "gpt2", "n_layer": 1}"#
        fx.add("G", gpt2)
        fx.add("H", gpt2)
        XCTAssertEqual(try linear("G", "H").outputNames, ["transformer.wte.weight", "transformer.h.0.attn.c_attn.weight"])
    }
}

/// An integer value of the target's `config.json`.
func configValue(_ target: OutputTarget, _ key: String) throws -> Int? {
    guard let text = target.config else { return nil }
    return try JSONParser.parse(Array(text.utf8))[key]?.intValue
}

/// Vocabularies of different sizes: mergekit 0.1.5's error, or `--unsafe-truncate-embeddings`.
final class VocabularyMismatchTests: PlannerTestCase {
    private func setUpModels() {
        fx.add("A", FakeModel(layers: 1))
        var b = FakeModel(layers: 1)
        b.vocab = 10
        fx.add("B", b)
    }

    private let yaml = """
        merge_method: linear
        models:
          - model: $A
            parameters: {weight: 0.5}
          - model: $B
            parameters: {weight: 0.5}
        """

    func testDifferentVocabulariesStopWithBothSizesAndTheWaysForward() {
        setUpModels()
        // At the entry of the model whose vocabulary differs from the first model's.
        fx.assertError(yaml, prefix: "t.yml:5:5:", contains: [
            "the vocabularies differ: tensor 'model.embed_tokens.weight' has a row per token",
            "has 8, '", "has 10 rows", "tokenizer: {source: base}", "--unsafe-truncate-embeddings",
        ])
    }

    func testUnsafeTruncationKeepsTheSmallestVocabularysRows() throws {
        setUpModels()
        var options = PlannerOptions()
        options.unsafeTruncateEmbeddings = true
        let plan = try Compiler.compile(fx.parse(yaml), catalog: fx.catalog, costs: testCosts, options: options)
        for name in ["model.embed_tokens.weight", "lm_head.weight"] {
            let node = try plan.node(of: name)
            XCTAssertEqual(node.type.shape, [8, 4])
            let cut = plan.graph[node.operands[1]]
            XCTAssertEqual(cut.op, .load(model: 1, tensor: name))
            XCTAssertEqual(cut.type.shape, [8, 4], "B's first 8 of 10 rows")
            XCTAssertEqual(cut.note, "first 8 of 10 rows (--unsafe-truncate-embeddings)")
        }
        XCTAssertEqual(plan.warnings.filter { $0.contains("UNSAFE vocabulary truncation") }.count, 2)
        // A tensor that differs elsewhere is still a shape mismatch.
        var c = FakeModel(layers: 1)
        c.shapes = ["model.norm.weight": [5]]
        fx.add("C", c)
        XCTAssertThrowsError(try Compiler.compile(fx.parse(yaml.replacingOccurrences(of: "$B", with: "$C")),
                                                  catalog: fx.catalog, costs: testCosts, options: options)) {
            XCTAssertTrue("\($0)".contains("shape mismatch for output tensor 'model.norm.weight'"), "\($0)")
        }
    }
}
