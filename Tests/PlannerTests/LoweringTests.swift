import Checkpoint
import IR
import XCTest
import Parser
@testable import Planner

/// What each merge method lowers to, over made-up Llama checkpoints.
final class LoweringTests: PlannerTestCase {
    // MARK: linear

    private func linear(_ wa: String, _ wb: String, extra: String = "") throws -> Plan {
        fx.add("A", FakeModel(layers: 2))
        fx.add("B", FakeModel(layers: 2))
        return try fx.compile("""
            merge_method: linear
            models:
              - model: $A
                parameters:
                  weight: \(wa)
              - model: $B
                parameters:
                  weight: \(wb)
            \(extra)
            """)
    }

    /// Asserts every output is one weighted_sum of model 0 and model 1's tensor of the same name.
    private func assertLinear(_ plan: Plan, _ coefficients: [Double], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(plan.outputNames, llamaNames(layers: 2), file: file, line: line)
        for output in plan.graph.outputs {
            let node = plan.graph[output.value]
            XCTAssertEqual(node.op, .weightedSum(coefficients), output.name, file: file, line: line)
            XCTAssertEqual(node.operands.count, 2, file: file, line: line)
            XCTAssertEqual(node.operands.compactMap { plan.load($0)?.model }, [0, 1], file: file, line: line)
            XCTAssertEqual(node.operands.compactMap { plan.load($0)?.tensor }, [output.name, output.name], file: file, line: line)
            XCTAssertEqual(node.type, plan.graph[node.operands[0]].type, file: file, line: line)
        }
        let tensors = llamaNames(layers: 2).count
        XCTAssertEqual(plan.graph.nodes.count, 3 * tensors, "two loads and one merge per tensor", file: file, line: line)
        XCTAssertEqual(plan.loadCount, 2 * tensors, file: file, line: line)
        XCTAssertEqual(plan.graph.loadRequests, 2 * tensors, file: file, line: line)
    }

    func testLinearKeepsNormalizedWeights() throws {
        let plan = try linear("0.6", "0.4")
        try assertLinear(plan, [0.6, 0.4])
        XCTAssertEqual(plan.graph.models.map(\.path), [fx.path("A"), fx.path("B")])
        XCTAssertEqual(plan.graph.models.map(\.name), [fx.path("A"), fx.path("B")])
        XCTAssertTrue(plan.warnings.isEmpty, "\(plan.warnings)")
    }

    func testLinearNormalizesWeights() throws {
        try assertLinear(try linear("3", "1"), [0.75, 0.25])
    }

    func testLinearWithoutNormalizeKeepsRawWeights() throws {
        try assertLinear(try linear("3", "1", extra: "parameters:\n  normalize: false"), [3, 1])
    }

    func testLinearWeightsGivenAsStrings() throws {
        try assertLinear(try linear("\"3\"", "'1'"), [0.75, 0.25])
    }

    func testLinearFilteredWeights() throws {
        fx.add("A", FakeModel(layers: 2))
        fx.add("B", FakeModel(layers: 2))
        let plan = try fx.compile("""
            merge_method: linear
            parameters:
              weight: 1
            models:
              - model: $A
                parameters:
                  weight:
                    - filter: mlp
                      value: 3
              - model: $B
            """)
        XCTAssertEqual(try plan.node(of: "model.layers.1.mlp.up_proj.weight").op, .weightedSum([0.75, 0.25]))
        XCTAssertEqual(try plan.node(of: "model.layers.1.self_attn.q_proj.weight").op, .weightedSum([0.5, 0.5]))
        XCTAssertEqual(try plan.node(of: "lm_head.weight").op, .weightedSum([0.5, 0.5]))
    }

    func testLinearWeightGradientOverLayers() throws {
        fx.add("A", FakeModel(layers: 3))
        fx.add("B", FakeModel(layers: 3))
        let plan = try fx.compile("""
            merge_method: linear
            models:
              - model: $A
                parameters:
                  weight: [1, 0]
              - model: $B
                parameters:
                  weight: [0, 1]
            """)
        XCTAssertEqual(try plan.node(of: "model.layers.0.mlp.up_proj.weight").op, .weightedSum([1, 0]))
        XCTAssertEqual(try plan.node(of: "model.layers.1.mlp.up_proj.weight").op, .weightedSum([0.5, 0.5]))
        XCTAssertEqual(try plan.node(of: "model.layers.2.mlp.up_proj.weight").op, .weightedSum([0, 1]))
        XCTAssertEqual(try plan.node(of: "model.embed_tokens.weight").op, .weightedSum([1, 0]), "pre tensors use t = 0")
    }

    func testSamePathUnderTwoSpellingsLoadsOnce() throws {
        let a = fx.add("A", FakeModel(layers: 2))
        fx.add("ALIAS", FakeModel(layers: 2), resolvedPath: a)
        let plan = try fx.compile("""
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
              - model: $ALIAS
                parameters: {weight: 1}
            """)
        XCTAssertEqual(plan.graph.models, [ModelInput(name: a, path: a)])
        let tensors = llamaNames(layers: 2).count
        XCTAssertEqual(plan.loadCount, tensors, "one load per tensor")
        XCTAssertEqual(plan.graph.loadRequests, 2 * tensors)
        for output in plan.graph.outputs {
            let node = plan.graph[output.value]
            XCTAssertEqual(node.op, .weightedSum([0.5, 0.5]))
            XCTAssertEqual(node.operands[0], node.operands[1])
            XCTAssertEqual(plan.load(node.operands[0])?.tensor, output.name)
        }
        XCTAssertEqual(fx.catalog.requests, [fx.path("A"), fx.path("ALIAS")])
    }

    // MARK: task arithmetic

    func testTaskArithmeticFoldsLambdaIntoWeights() throws {
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        fx.add("C", FakeModel(layers: 1))
        let plan = try fx.compile("""
            merge_method: task_arithmetic
            base_model: $A
            parameters:
              lambda: 2
            models:
              - model: $B
                parameters:
                  weight: 0.5
              - model: $C
                parameters:
                  weight: 0.25
            """)
        // The base is not listed among the models, so it is appended: B = @m0, C = @m1, A = @m2.
        XCTAssertEqual(plan.graph.models.map(\.path), [fx.path("B"), fx.path("C"), fx.path("A")])
        XCTAssertEqual(plan.outputNames, llamaNames(layers: 1))
        for output in plan.graph.outputs {
            let add = plan.graph[output.value]
            XCTAssertEqual(add.op, .add, output.name)
            XCTAssertEqual(add.operands.count, 2)
            let base = add.operands[0]
            XCTAssertEqual(plan.load(base)?.model, 2)
            XCTAssertEqual(plan.load(base)?.tensor, output.name)
            let mix = plan.graph[add.operands[1]]
            XCTAssertEqual(mix.op, .weightedSum([1.0, 0.5]))
            XCTAssertEqual(mix.operands.count, 2)
            for (delta, model) in zip(mix.operands, [0, 1]) {
                let sub = plan.graph[delta]
                XCTAssertEqual(sub.op, .sub)
                XCTAssertEqual(sub.operands.count, 2)
                XCTAssertEqual(plan.load(sub.operands[0])?.model, model)
                XCTAssertEqual(plan.load(sub.operands[0])?.tensor, output.name)
                XCTAssertEqual(sub.operands[1], base, "task vectors subtract the shared base load")
            }
        }
        // Per tensor: 3 loads, 2 subs, 1 weighted sum, 1 add.
        XCTAssertEqual(plan.graph.nodes.count, 7 * llamaNames(layers: 1).count)
    }

    func testTaskArithmeticNormalize() throws {
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        fx.add("C", FakeModel(layers: 1))
        let plan = try fx.compile("""
            merge_method: task_arithmetic
            base_model: $A
            parameters:
              normalize: true
              lambda: 2
            models:
              - model: $A
              - model: $B
                parameters:
                  weight: 0.5
              - model: $C
                parameters:
                  weight: 0.25
            """)
        let add = try plan.node(of: "lm_head.weight")
        XCTAssertEqual(plan.load(add.operands[0])?.model, 0, "the base is listed first")
        guard case .weightedSum(let c) = plan.graph[add.operands[1]].op else { return XCTFail("expected weighted_sum") }
        XCTAssertEqual(c.count, 2)
        XCTAssertEqual(c[0], 2 * 0.5 / 0.75, accuracy: 1e-12)
        XCTAssertEqual(c[1], 2 * 0.25 / 0.75, accuracy: 1e-12)
    }

    func testTaskArithmeticWithOnlyTheBaseIsTheBase() throws {
        fx.add("A", FakeModel(layers: 1))
        let plan = try fx.compile("""
            merge_method: task_arithmetic
            base_model: $A
            models:
              - model: $A
            """)
        for output in plan.graph.outputs {
            XCTAssertEqual(plan.load(output.value)?.tensor, output.name)
        }
        XCTAssertEqual(plan.graph.nodes.count, plan.graph.outputs.count)
    }

    // MARK: slerp

    private func slerpPlan(layers: Int = 4, t: String = "[0, 0.5, 1]", baseFirst: Bool = true) throws -> Plan {
        fx.add("A", FakeModel(layers: layers))
        fx.add("B", FakeModel(layers: layers))
        let models = baseFirst ? "  - model: $A\n  - model: $B" : "  - model: $B\n  - model: $A"
        return try fx.compile("""
            merge_method: slerp
            base_model: $A
            parameters:
              t: \(t)
            models:
            \(models)
            """)
    }

    private func slerpT(_ plan: Plan, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let node = try plan.node(of: name, file: file, line: line)
        guard case .slerp(let t) = node.op else {
            XCTFail("\(name) is \(node.op), not slerp", file: file, line: line)
            return .nan
        }
        return t
    }

    func testSlerpGradientResolvesPerLayer() throws {
        let plan = try slerpPlan()
        let a = plan.graph.models.firstIndex { $0.path == fx.path("A") }
        for layer in 0..<4 {
            for name in layerTensors(layer) {
                let node = try plan.node(of: name)
                XCTAssertEqual(node.operands.compactMap { plan.load($0)?.model }, [a!, 1 - a!], "base first")
            }
        }
        XCTAssertEqual(try slerpT(plan, "model.layers.0.self_attn.q_proj.weight"), 0)
        XCTAssertEqual(try slerpT(plan, "model.layers.1.mlp.up_proj.weight"), 1.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(try slerpT(plan, "model.layers.2.mlp.up_proj.weight"), 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(try slerpT(plan, "model.layers.3.self_attn.q_proj.weight"), 1)
        XCTAssertEqual(try slerpT(plan, "model.layers.3.input_layernorm.weight"), 1)
        XCTAssertEqual(try slerpT(plan, "model.embed_tokens.weight"), 0, "pre tensors use t = 0")
    }

    func testSlerpBaseListedSecondIsStillFirstOperand() throws {
        let plan = try slerpPlan(t: "0.3", baseFirst: false)
        let a = try XCTUnwrap(plan.graph.models.firstIndex { $0.path == fx.path("A") })
        XCTAssertEqual(a, 1)
        for output in plan.graph.outputs {
            let node = plan.graph[output.value]
            XCTAssertEqual(node.op, .slerp(t: 0.3))
            XCTAssertEqual(node.operands.compactMap { plan.load($0)?.model }, [1, 0])
        }
    }

    func testSlerpFilteredGradients() throws {
        fx.add("A", FakeModel(layers: 4))
        fx.add("B", FakeModel(layers: 4))
        let plan = try fx.compile("""
            merge_method: slerp
            base_model: $A
            models:
              - model: $A
              - model: $B
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 0.3, 0.7, 1]
                - filter: mlp
                  value: [1, 0.5, 0.7, 0.3, 0]
                - value: 0.5
            """)
        // Layer 1 of 4: t = 1/3, scaled = 4/3 → one third from the 2nd to the 3rd point.
        XCTAssertEqual(try slerpT(plan, "model.layers.1.self_attn.q_proj.weight"), 0.5 + (0.3 - 0.5) / 3, accuracy: 1e-12)
        XCTAssertEqual(try slerpT(plan, "model.layers.1.mlp.up_proj.weight"), 0.5 + (0.7 - 0.5) / 3, accuracy: 1e-12)
        XCTAssertEqual(try slerpT(plan, "model.layers.0.mlp.up_proj.weight"), 1)
        XCTAssertEqual(try slerpT(plan, "model.layers.3.mlp.up_proj.weight"), 0)
        XCTAssertEqual(try slerpT(plan, "model.layers.2.input_layernorm.weight"), 0.5)
        XCTAssertEqual(try slerpT(plan, "lm_head.weight"), 0.5)
    }

    /// mergekit plans the tensors after the layer stack with `t = 1` (`ConfigReader(t=1)` in `MergePlanner._plan`).
    /// mergekit 0.1.5 (`MergePlanner.plan_module`) reads gradients for tensors before and after the layer
    /// stack with a `ConfigReader` built at t = 0, so they take the gradient's first value.
    func testSlerpPostTensorsUseTEqualZeroAsMergekit015() throws {
        let plan = try slerpPlan()
        XCTAssertEqual(try slerpT(plan, "lm_head.weight"), 0)
        XCTAssertEqual(try slerpT(plan, "model.norm.weight"), 0)
    }

    func testSingleLayerSliceUsesTEqualOne() throws {
        let plan = try slerpPlan(layers: 1)
        XCTAssertEqual(try slerpT(plan, "model.layers.0.mlp.up_proj.weight"), 1)
    }

    // MARK: passthrough

    func testPassthroughSlicesRenumberLayers() throws {
        fx.add("A", FakeModel(layers: 3))
        fx.add("B", FakeModel(layers: 4))
        let plan = try fx.compile("""
            merge_method: passthrough
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 2]
              - sources:
                  - model: $B
                    layer_range: [1, 3]
            """)
        XCTAssertEqual(plan.outputNames, llamaNames(layers: 4))
        let a = 0, b = 1
        XCTAssertEqual(plan.graph.models.map(\.path), [fx.path("A"), fx.path("B")])
        func source(_ name: String) throws -> (Int, String) {
            let v = try plan.value(of: name)
            let load = try XCTUnwrap(plan.load(v), "\(name) is not a plain load")
            return (load.model, load.tensor)
        }
        XCTAssertTrue(try source("model.embed_tokens.weight") == (a, "model.embed_tokens.weight"))
        for (out, (model, layer)) in [(0, (a, 0)), (1, (a, 1)), (2, (b, 1)), (3, (b, 2))] {
            for (outName, inName) in zip(layerTensors(out), layerTensors(layer)) {
                let (m, t) = try source(outName)
                XCTAssertEqual(m, model, outName)
                XCTAssertEqual(t, inName, outName)
            }
        }
        XCTAssertTrue(try source("model.norm.weight") == (b, "model.norm.weight"))
        XCTAssertTrue(try source("lm_head.weight") == (b, "lm_head.weight"))
        XCTAssertEqual(plan.graph.nodes.count, plan.graph.outputs.count, "passthrough adds nothing but loads")
        XCTAssertEqual(plan.mainTarget?.configJSON?["num_hidden_layers"]?.intValue, 4)
        XCTAssertEqual(plan.mainTarget?.tokenizerDonor, fx.path("A"))
    }

    func testPassthroughRepeatingLayersSharesLoads() throws {
        fx.add("A", FakeModel(layers: 3))
        let plan = try fx.compile("""
            merge_method: passthrough
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 2]
              - sources:
                  - model: $A
                    layer_range: [1, 3]
            """)
        XCTAssertEqual(plan.outputNames, llamaNames(layers: 4))
        for (l1, l2) in zip(layerTensors(1), layerTensors(2)) {
            XCTAssertEqual(try plan.value(of: l1), try plan.value(of: l2), "layer 1 of A is written twice")
        }
        XCTAssertEqual(plan.loadCount, llamaNames(layers: 3).count)
        assertValidSchedule(plan.graph, plan.schedule)
    }

    func testPassthroughScale() throws {
        fx.add("A", FakeModel(layers: 2))
        let plan = try fx.compile("""
            merge_method: passthrough
            models:
              - model: $A
                parameters:
                  scale:
                    - filter: up_proj
                      value: 0.5
            """)
        let up = try plan.node(of: "model.layers.1.mlp.up_proj.weight")
        XCTAssertEqual(up.op, .scale(0.5))
        XCTAssertEqual(plan.load(up.operands[0])?.tensor, "model.layers.1.mlp.up_proj.weight")
        XCTAssertNotNil(plan.load(try plan.value(of: "model.layers.1.self_attn.q_proj.weight")), "no scale elsewhere")
    }

    // MARK: model stock

    func testModelStockPutsBaseFirst() throws {
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        fx.add("C", FakeModel(layers: 1))
        let plan = try fx.compile("""
            merge_method: model_stock
            base_model: $C
            parameters:
              filter_wise: true
            models:
              - model: $A
              - model: $B
              - model: $C
            """)
        for output in plan.graph.outputs {
            let node = plan.graph[output.value]
            XCTAssertEqual(node.op, .modelStock(filterWise: true))
            XCTAssertEqual(node.operands.compactMap { plan.load($0)?.model }, [2, 0, 1])
        }
    }

    // MARK: dtypes

    func testComputeDTypeInsertsCastsBeforeTheMerge() throws {
        let plan = try linear("1", "1", extra: "dtype: bfloat16")
        for output in plan.graph.outputs {
            let merge = plan.graph[output.value]
            XCTAssertEqual(merge.op, .linearMix(weights: [1, 1], normalize: true), "mergekit's f32 order on bf16")
            XCTAssertEqual(merge.type.dtype, .bf16)
            for operand in merge.operands {
                let cast = plan.graph[operand]
                XCTAssertEqual(cast.op, .cast(.bf16))
                XCTAssertEqual(cast.type.dtype, .bf16)
                XCTAssertEqual(plan.graph[cast.operands[0]].type.dtype, .f32)
                XCTAssertNotNil(plan.load(cast.operands[0]))
            }
        }
        XCTAssertEqual(plan.mainTarget?.configJSON?["torch_dtype"]?.stringValue, "bfloat16")
        XCTAssertEqual(plan.schedule.shards.first?.byteCount, plan.graph.outputs.reduce(0) { $0 + plan.graph[$1.value].type.byteCount })
    }

    func testOutDTypeInsertsCastAfterTheMerge() throws {
        let plan = try linear("1", "1", extra: "out_dtype: float16")
        for output in plan.graph.outputs {
            let cast = plan.graph[output.value]
            XCTAssertEqual(cast.op, .cast(.f16))
            XCTAssertEqual(cast.type.dtype, .f16)
            let merge = plan.graph[cast.operands[0]]
            XCTAssertEqual(merge.op, .weightedSum([0.5, 0.5]))
            XCTAssertEqual(merge.type.dtype, .f32)
            XCTAssertTrue(merge.operands.allSatisfy { plan.load($0) != nil }, "no casts before the merge")
        }
        XCTAssertEqual(plan.mainTarget?.configJSON?["torch_dtype"]?.stringValue, "float16")
    }

    func testBothDTypes() throws {
        let plan = try linear("1", "1", extra: "dtype: bfloat16\nout_dtype: float32")
        let cast = try plan.node(of: "lm_head.weight")
        XCTAssertEqual(cast.op, .cast(.f32))
        let merge = plan.graph[cast.operands[0]]
        XCTAssertEqual(merge.type.dtype, .bf16)
        XCTAssertTrue(merge.operands.allSatisfy { plan.graph[$0].op == .cast(.bf16) })
    }

    func testMixedInputDTypesArePromotedToF32() throws {
        fx.add("A", FakeModel(layers: 1, dtype: .f16))
        fx.add("B", FakeModel(layers: 1, dtype: .bf16))
        let plan = try fx.compile("""
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
              - model: $B
                parameters: {weight: 1}
            """)
        for output in plan.graph.outputs {
            let merge = plan.graph[output.value]
            XCTAssertEqual(merge.type.dtype, .f32)
            XCTAssertEqual(merge.operands.map { plan.graph[$0].op }, [.cast(.f32), .cast(.f32)])
        }
    }

    func testSameInputDTypeNeedsNoCasts() throws {
        fx.add("A", FakeModel(layers: 1, dtype: .bf16))
        fx.add("B", FakeModel(layers: 1, dtype: .bf16))
        let plan = try fx.compile("""
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
              - model: $B
                parameters: {weight: 1}
            """)
        XCTAssertFalse(plan.graph.nodes.contains { if case .cast = $0.op { return true } else { return false } })
        XCTAssertEqual(try plan.node(of: "lm_head.weight").type.dtype, .bf16)
    }

    // MARK: warnings and output config

    func testUnusedParameterWarning() throws {
        fx.add("A", FakeModel(layers: 1))
        let plan = try fx.compile("""
            merge_method: linear
            parameters:
              density: 0.5
            models:
              - model: $A
                parameters:
                  weight: 1
            """)
        // The location is that of the key (`ParameterEntry.keyLocation`), not of its value (3:12).
        XCTAssertEqual(plan.warnings, ["t.yml:3:3: warning: parameter 'density' is not used by merge method 'linear'"])
    }

    func testMisspeltParameterWarningSuggestsTheName() throws {
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        let plan = try fx.compile("""
            merge_method: ties
            base_model: $A
            models:
              - model: $B
                parameters: {weight: 1, densty: 0.7}
            """)
        // At the misspelt key, not at its value (5:37).
        XCTAssertEqual(plan.warnings, ["t.yml:5:29: warning: parameter 'densty' is not used by merge method 'ties' "
                                       + "(did you mean 'density'?)"])
    }

    /// A parameter of the whole merge set per model is reported at its key, in block and flow mappings alike.
    func testMisplacedParameterWarningPointsAtTheKey() throws {
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        let plan = try fx.compile("""
            merge_method: ties
            base_model: $A
            models:
              - model: $B
                parameters:
                  weight: 1
                  lambda:   0.5
              - model: $A
                parameters: {normalize: true}
            """)
        XCTAssertEqual(plan.warnings.map { $0.prefix(while: { $0 != " " }) }, ["t.yml:7:7:", "t.yml:9:18:"], "\(plan.warnings)")
        XCTAssertTrue(plan.warnings.allSatisfy { $0.contains("applies to the whole merge") }, "\(plan.warnings)")
    }

    func testOutputConfigKeepsDonorKeys() throws {
        var a = FakeModel(layers: 2)
        a.configJSON = #"{"model_type": "gpt2", "n_layer": 2, "n_embd": 4}"#
        fx.add("A", a)
        let plan = try fx.compile("""
            merge_method: passthrough
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 2]
              - sources:
                  - model: $A
                    layer_range: [0, 2]
            """)
        let config = try XCTUnwrap(plan.mainTarget?.configJSON)
        XCTAssertEqual(config.keys, ["model_type", "n_layer", "n_embd"])
        XCTAssertEqual(config["n_layer"]?.intValue, 4)
        XCTAssertEqual(config["model_type"]?.stringValue, "gpt2")
    }

    func testNoConfigJSONMeansNoOutputConfig() throws {
        let info = CheckpointInfo(resolvedPath: "/x", tensorNames: ["w"],
                                  tensors: ["w": TensorInfo(name: "w", type: TensorType(dtype: .f32, shape: [2]))],
                                  configJSON: nil)
        let path = fx.add("A", FakeModel(layers: 0))
        fx.catalog.checkpoints[path] = info
        let plan = try fx.compile("merge_method: passthrough\nmodels:\n  - model: $A\n")
        XCTAssertNotNil(plan.mainTarget)
        XCTAssertNil(plan.mainTarget?.config)
        XCTAssertEqual(plan.outputNames, ["w"])
        XCTAssertEqual(plan.graph.models, [ModelInput(name: path, path: "/x")])
    }

    // MARK: stages

    func testStagesShareLoadsAndRecordWhoUsesThem() throws {
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        let plan = try fx.compile("""
            name: ab
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
              - model: $B
                parameters: {weight: 1}
            ---
            merge_method: linear
            models:
              - model: ab
                parameters: {weight: 1}
              - model: $A
                parameters: {weight: 3}
            """)
        XCTAssertEqual(plan.graph.models.map(\.path), [fx.path("A"), fx.path("B")])
        XCTAssertEqual(fx.catalog.requests.filter { $0 == fx.path("A") }.count, 1, "each checkpoint is read once")
        let final = try plan.node(of: "lm_head.weight")
        XCTAssertEqual(final.op, .weightedSum([0.25, 0.75]))
        XCTAssertEqual(final.stages, ["<final>"])
        let inner = plan.graph[final.operands[0]]
        XCTAssertEqual(inner.op, .weightedSum([0.5, 0.5]))
        XCTAssertEqual(inner.stages, ["ab"])
        XCTAssertEqual(final.operands[1], inner.operands[0], "A's load is shared by both stages")
        XCTAssertEqual(plan.graph[final.operands[1]].stages, ["ab", "<final>"])
        XCTAssertEqual(plan.graph[inner.operands[1]].stages, ["ab"])
        XCTAssertEqual(Set(plan.graph.outputs.compactMap(\.stage)), ["<final>"])
        assertValidSchedule(plan.graph, plan.schedule)
        XCTAssertTrue(plan.dump().contains("used by ab, <final>"))
    }

    func testChoosingANamedStage() throws {
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        let yaml = """
            name: first
            merge_method: passthrough
            models:
              - model: $A
            ---
            name: second
            merge_method: linear
            models:
              - model: first
                parameters: {weight: 1}
              - model: $B
                parameters: {weight: 1}
            """
        let first = try fx.compile(yaml, stage: "first")
        XCTAssertEqual(first.graph.models.map(\.path), [fx.path("A")], "the unused stage is not compiled")
        XCTAssertEqual(first.graph.nodes.count, first.graph.outputs.count)
        let second = try fx.compile(yaml, stage: "second")
        XCTAssertEqual(try second.node(of: "lm_head.weight").op, .weightedSum([0.5, 0.5]))
    }
}
