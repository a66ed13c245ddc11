import XCTest
import IR
import Parser
@testable import Planner

/// Planner errors: each names the config position (file:line:col) of the node at fault.
final class PlannerErrorTests: PlannerTestCase {
    override func setUp() {
        super.setUp()
        fx.add("A", FakeModel(layers: 3))
        fx.add("B", FakeModel(layers: 3))
        fx.add("C", FakeModel(layers: 3))
    }

    func testUnknownMethod() {
        fx.assertError("""
            merge_method: foo
            models:
              - model: $A
            """, prefix: "t.yml:1:15: ", contains: ["unknown merge method 'foo' (`mergegraph methods` lists them)"])
    }

    func testDareTiesRequiresBaseModel() {
        fx.assertError("""
            models:
              - model: $A
            merge_method: dare_ties
            """, prefix: "t.yml:3:15: ", contains: ["merge method 'dare_ties' requires base_model"])
    }

    func testSlerpWithoutBaseModel() {
        fx.assertError("""
            merge_method: slerp
            models:
              - model: $A
              - model: $B
            parameters:
              t: 0.5
            """, prefix: "t.yml:1:15: ", contains: ["merge method 'slerp' requires base_model"])
    }

    func testBaseModelNotAmongSliceSources() {
        fx.assertError("""
            merge_method: slerp
            parameters:
              t: 0.5
            base_model: $C
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 2]
                  - model: $B
                    layer_range: [0, 2]
            """, prefix: "t.yml:4:13: ", contains: ["base_model '$C' is not one of this slice's sources"])
    }

    func testSliceBaseModelNotAmongSliceSources() {
        fx.assertError("""
            merge_method: slerp
            parameters:
              t: 0.5
            base_model: $A
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 2]
                  - model: $B
                    layer_range: [0, 2]
              - base_model: $C
                sources:
                  - model: $A
                    layer_range: [2, 3]
                  - model: $B
                    layer_range: [2, 3]
            """, prefix: "t.yml:11:17: ", contains: ["base_model '$C' is not one of this slice's sources"])
    }

    func testTOutOfRange() {
        fx.assertError("""
            merge_method: slerp
            base_model: $A
            models:
              - model: $A
              - model: $B
            parameters:
              t: 1.5
            """, prefix: "t.yml:7:6: ", contains: ["t must be between 0 and 1", "1.5"])
    }

    func testNegativeTInSliceParameters() {
        fx.assertError("""
            merge_method: slerp
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 3]
                  - model: $B
                    layer_range: [0, 3]
                base_model: $A
                parameters:
                  t:
                    - filter: mlp
                      value: -0.5
                    - value: 0.5
            """, prefix: "t.yml:11:11: ", contains: ["t must be between 0 and 1", "-0.5", "mlp"])
    }

    func testTOfWrongType() {
        fx.assertError("""
            merge_method: slerp
            base_model: $A
            models:
              - model: $A
              - model: $B
            parameters:
              t: half
            """, prefix: "t.yml:7:6: ", contains: ["t must be a number", "\"half\""])
    }

    func testMissingT() {
        fx.assertError("""
            merge_method: slerp
            base_model: $A
            models:
              - model: $A
              - model: $B
            """, prefix: "t.yml:1:15: ", contains: ["missing required parameter 't'", "slerp"])
    }

    func testSlerpWithThreeModels() {
        fx.assertError("""
            merge_method: slerp
            base_model: $A
            parameters: {t: 0.5}
            models:
              - model: $A
              - model: $B
              - model: $C
            """, prefix: "t.yml:4:1: ", contains: ["merge method 'slerp' takes exactly 2 input models", "found 3"])
    }

    func testLayerRangeBeyondModel() {
        fx.assertError("""
            merge_method: passthrough
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 2]
              - sources:
                  - model: $B
                    layer_range: [1, 4]
            """, prefix: "t.yml:8:22: ", contains: ["layer_range [1, 4] is out of bounds", "'$B' has 3 layers"])
    }

    func testSliceSourcesWithDifferentLayerCounts() {
        fx.assertError("""
            merge_method: linear
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 2]
                    parameters: {weight: 1}
                  - model: $B
                    layer_range: [0, 3]
                    parameters: {weight: 1}
            """, prefix: "t.yml:7:9: ", contains: ["same number of layers", "2 in the first, 3 here"])
    }

    func testModelPathThatDoesNotExist() {
        let missing = fx.root.appendingPathComponent("nope").path
        fx.assertError("""
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
              - model: \(missing)
                parameters: {weight: 1}
            """, prefix: "t.yml:5:12: ", contains: ["model '\(missing)'", "no such directory"])
        XCTAssertFalse(fx.catalog.requests.contains(missing), "the catalog is not asked about missing paths")
    }

    func testCatalogErrorNamesTheModel() {
        let dir = fx.root.appendingPathComponent("empty")
        fx.catalog.emptyDirectories.insert(dir.path)
        fx.assertError("""
            merge_method: passthrough
            models:
              - model: \(dir.path)
            """, prefix: "t.yml:3:12: ", contains: ["model '\(dir.path)'", "fake catalog has no checkpoint"])
    }

    func testInvalidConfigJSON() {
        var bad = FakeModel(layers: 1)
        bad.configJSON = "{\"num_hidden_layers\": 1,"
        fx.add("BAD", bad)
        fx.assertError("""
            merge_method: passthrough
            models:
              - model: $BAD
            """, prefix: "t.yml:3:12: ", contains: ["model '$BAD'", "config.json", "invalid JSON"])
    }

    func testTensorMissingFromOneModel() {
        var d = FakeModel(layers: 3)
        d.drop = ["model.layers.1.mlp.up_proj.weight"]
        fx.add("D", d)
        fx.assertError("""
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
              - model: $D
                parameters: {weight: 1}
            """, prefix: "t.yml:5:5: ",
            contains: ["tensor 'model.layers.1.mlp.up_proj.weight' is missing from model '$D'"])
    }

    func testShapeMismatchNamesModelsAndTensor() {
        var d = FakeModel(layers: 3)
        d.shapes = ["model.layers.2.self_attn.q_proj.weight": [4, 8]]
        fx.add("D", d)
        let message = fx.compileError("""
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
              - model: $D
                parameters: {weight: 1}
            """)
        XCTAssertTrue(message.contains("shape mismatch"), message)
        XCTAssertTrue(message.contains("'model.layers.2.self_attn.q_proj.weight'"), message)
        XCTAssertTrue(message.hasPrefix("t.yml:5:5: "), "at the model whose shape differs: \(message)")
        XCTAssertTrue(message.contains("of model '\(fx.path("A"))' is [4, 4]"), message)
        XCTAssertTrue(message.contains("of model '\(fx.path("D"))' is [4, 8]"), message)
    }

    func testLinearWeightMissing() {
        fx.assertError("""
            merge_method: linear
            models:
              - model: $A
                parameters:
                  weight: 1
              - model: $B
            """, prefix: "t.yml:6:5: ",
            contains: ["missing required parameter 'weight' for model '$B'", "merge method 'linear'"])
    }

    func testLinearWeightOfWrongType() {
        fx.assertError("""
            merge_method: linear
            models:
              - model: $A
                parameters:
                  weight: heavy
            """, prefix: "t.yml:5:15: ", contains: ["weight must be a number", "\"heavy\""])
    }

    func testLinearWeightsSummingToZero() {
        fx.assertError("""
            merge_method: linear
            models:
              - model: $A
                parameters:
                  weight: 1
              - model: $B
                parameters:
                  weight: -1
            """, prefix: "t.yml:5:15: ", contains: ["sum to zero"])
    }

    /// A multislerp weight past float16's range is an error at that weight (it would be infinite, and normalizing
    /// would make every weight NaN), not the IR verifier's complaint about non-finite weights.
    func testMultislerpWeightPastTheDTypesRange() {
        fx.assertError("""
            merge_method: multislerp
            dtype: float16
            models:
              - model: $A
                parameters:
                  weight: 1
              - model: $B
                parameters:
                  weight: 100000
            """, prefix: "t.yml:9:15: ", contains: ["weight 100000.0 of tensor", "past the largest value of float16"])
    }

    /// The same for the task-arithmetic family (a float16 weight tensor) and on float32 merges, whose kernels take
    /// the weight as f32 (`torch.tensor(1e39, dtype=torch.float32)` is inf): a positioned error, not the verifier's.
    func testTaskArithmeticAndTIESWeightsPastTheDTypesRange() {
        fx.assertError("""
            merge_method: task_arithmetic
            dtype: float16
            base_model: $A
            models:
              - model: $A
              - model: $B
                parameters:
                  weight: 70000
            """, prefix: "t.yml:8:15: ", contains: ["weight 70000.0 of tensor", "past the largest value of float16"])
        fx.assertError("""
            merge_method: ties
            dtype: float32
            base_model: $A
            models:
              - model: $A
              - model: $B
                parameters:
                  weight: 0.5
                  density: 0.5
              - model: $C
                parameters:
                  weight: 1e39
                  density: 0.5
            """, prefix: "t.yml:12:15: ", contains: ["weight 1e+39 of tensor", "past the largest value of float32"])
    }

    /// A float64 merge is computed in f32: a weight past float32's range is refused there too, and so is a `lambda`
    /// past it (a factor the kernels take as f32).
    func testFloat64WeightAndLambdaPastFloat32sRange() {
        fx.assertError("""
            merge_method: task_arithmetic
            dtype: float64
            base_model: $A
            models:
              - model: $A
              - model: $B
                parameters:
                  weight: 1e39
            """, prefix: "t.yml:8:15: ", contains: ["weight 1e+39 of tensor", "float32, in which mergegraph computes float64"])
        fx.assertError("""
            merge_method: ties
            dtype: float32
            base_model: $A
            parameters:
              lambda: -1e39
            models:
              - model: $A
              - model: $B
                parameters:
                  weight: 1
                  density: 0.5
            """, prefix: "t.yml:5:11: ", contains: ["lambda -1e+39 of tensor", "past the largest value of float32"])
    }

    /// multislerp's weights summing past the merge dtype's range (an infinite sum: every normalized weight 0) are
    /// refused at the first weight; in float32 they are normalized exactly.
    func testMultislerpWeightsSummingPastTheDTypesRange() throws {
        fx.assertError("""
            merge_method: multislerp
            dtype: bfloat16
            models:
              - model: $A
                parameters:
                  weight: 3e38
              - model: $B
                parameters:
                  weight: 3e38
            """, prefix: "t.yml:6:15: ", contains: ["sum past the largest value of bfloat16"])
    }

    /// linear's weights are a float32 coefficient tensor whatever the merge dtype.
    func testLinearWeightPastFloat32sRange() {
        fx.assertError("""
            merge_method: linear
            dtype: bfloat16
            models:
              - model: $A
                parameters:
                  weight: -1e39
              - model: $B
                parameters:
                  weight: 1
            """, prefix: "t.yml:6:15: ", contains: ["weight -1e+39 of tensor", "past the largest value of float32"])
    }

    func testTaskArithmeticNonBaseWeightMissing() {
        fx.assertError("""
            merge_method: task_arithmetic
            base_model: $A
            models:
              - model: $A
              - model: $B
            """, prefix: "t.yml:5:5: ", contains: ["missing required parameter 'weight' for model '$B'"])
    }

    func testSameModelListedTwice() {
        fx.assertError("""
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
              - model: $A
                parameters: {weight: 2}
            """, prefix: "t.yml:5:5: ", contains: ["model '$A' is listed twice"])
    }

    func testTokenizerSourceWithoutTokenizerJSON() {
        fx.assertError("""
            merge_method: linear
            models:
              - model: $A
                parameters: {weight: 1}
            tokenizer_source: union
            """, prefix: "t.yml:5:19: ", contains: ["cannot build the output vocabulary: $A: no tokenizer.json"])
    }

    func testPassthroughWithTwoModels() {
        fx.assertError("""
            merge_method: passthrough
            models:
              - model: $A
              - model: $B
            """, prefix: "t.yml:2:1: ", contains: ["merge method 'passthrough' takes exactly 1 input model (base included)", "found 2"])
    }

    // MARK: multi-document configs

    func testDuplicateStageName() {
        fx.assertError("""
            name: s
            merge_method: passthrough
            models:
              - model: $A
            ---
            name: s
            merge_method: passthrough
            models:
              - model: $B
            ---
            merge_method: passthrough
            models:
              - model: s
            """, prefix: "t.yml:6:7: ", contains: ["stage name 's' is used twice", "the first is at t.yml:1:7"])
    }

    func testTwoUnnamedDocuments() {
        fx.assertError("""
            merge_method: passthrough
            models:
              - model: $A
            ---
            merge_method: passthrough
            models:
              - model: $B
            """, prefix: "t.yml:5:1: ", contains: ["more than one document has no name", "the first is at t.yml:1:1"])
    }

    func testReferenceCycle() {
        fx.assertError("""
            name: a
            merge_method: passthrough
            models:
              - model: b
            ---
            name: b
            merge_method: passthrough
            models:
              - model: a
            ---
            merge_method: passthrough
            models:
              - model: a
            """, prefix: "t.yml:9:12: ", contains: ["reference cycle", "a → b → a"])
    }

    func testSelfReference() {
        fx.assertError("""
            name: loop
            merge_method: passthrough
            models:
              - model: loop
            """, prefix: "t.yml:4:12: ", contains: ["reference cycle", "loop → loop"], stage: "loop")
    }

    func testEveryDocumentNamedAndNoStageChosen() {
        let message = fx.compileError("""
            name: a
            merge_method: passthrough
            models:
              - model: $A
            ---
            name: b
            merge_method: passthrough
            models:
              - model: a
            """)
        XCTAssertTrue(message.hasPrefix("t.yml: "), message)
        XCTAssertTrue(message.contains("every document has a name"), message)
        XCTAssertTrue(message.contains("--stage"), message)
    }

    func testUnknownStageChosen() {
        let message = fx.compileError("""
            name: b
            merge_method: passthrough
            models:
              - model: $A
            ---
            name: a
            merge_method: passthrough
            models:
              - model: $B
            """, stage: "zzz")
        XCTAssertEqual(message, "t.yml: no stage named 'zzz' (stages: a, b)")
    }

    func testStageNameThatIsAlsoADirectory() {
        fx.assertError("""
            name: $A
            merge_method: passthrough
            models:
              - model: $B
            ---
            merge_method: passthrough
            models:
              - model: $A
            """, prefix: "t.yml:8:12: ", contains: ["names both a stage and an existing model directory"])
    }

    func testErrorInsideAReferencedStagePointsIntoThatStage() {
        fx.assertError("""
            name: inner
            merge_method: linear
            models:
              - model: $A
            ---
            merge_method: passthrough
            models:
              - model: inner
            """, prefix: "t.yml:4:5: ", contains: ["missing required parameter 'weight'"])
    }
}
