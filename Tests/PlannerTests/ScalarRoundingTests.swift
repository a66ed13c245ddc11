import IR
import XCTest
@testable import Planner

/// Each method's scalar-rounding rule (`ScalarRounding`, stated in its declaration): the value its op carries and
/// `--dump-ir` prints on bf16/f16 merges, and the exact value on f32 merges.
final class ScalarRoundingTests: PlannerTestCase {
    /// Compiles `yaml` (models $A, $B, $C, one layer each, f32) and returns the `--dump-ir` text.
    private func dump(_ yaml: String) throws -> String {
        for key in ["A", "B", "C"] { fx.add(key, FakeModel(layers: 1)) }
        let plan = try fx.compile(yaml)
        return Printer(graph: plan.graph, schedule: plan.schedule).render()
    }

    private func taskArithmetic(_ method: String, dtype: String, extra: String = "") -> String {
        """
        merge_method: \(method)
        base_model: $A
        models:
          - model: $B
            parameters:
              weight: 0.3
              \(extra)
          - model: $C
            parameters:
              weight: 0.4
              \(extra)
        dtype: \(dtype)
        """
    }

    // MARK: GeneralizedTaskArithmetic: weights in the merge dtype

    func testTaskArithmeticWeightsAreRoundedToBF16() throws {
        let text = try dump(taskArithmetic("task_arithmetic", dtype: "bfloat16"))
        XCTAssertTrue(text.contains("task_mix(weights: 0.30078125, 0.400390625)"), text)
        XCTAssertTrue(text.contains("// task_arithmetic weight=[0.3, 0.4]"), "the note keeps the configured weights")
        XCTAssertFalse(text.contains("weighted_sum"))
    }

    func testTaskArithmeticWeightsAreRoundedToF16() throws {
        let text = try dump(taskArithmetic("task_arithmetic", dtype: "float16"))
        XCTAssertTrue(text.contains("task_mix(weights: 0.300048828125, 0.39990234375)"), text)
    }

    func testTaskArithmeticOnF32KeepsExactWeights() throws {
        let text = try dump(taskArithmetic("task_arithmetic", dtype: "float32"))
        XCTAssertTrue(text.contains("weighted_sum(0.3, 0.4)"), text)
        XCTAssertFalse(text.contains("task_mix"))
    }

    func testTaskMixCarriesNormalizeAndLambda() throws {
        let text = try dump(taskArithmetic("task_arithmetic", dtype: "bfloat16") + "\nparameters:\n  normalize: true\n  lambda: 0.3")
        XCTAssertTrue(text.contains("task_mix(weights: 0.30078125, 0.400390625, normalize, lambda: 0.3)"),
                      "lambda multiplies as a Python scalar: not rounded\n" + text)
    }

    func testTiesWeightsAreRoundedToBF16() throws {
        let text = try dump(taskArithmetic("ties", dtype: "bfloat16", extra: "density: 0.5"))
        XCTAssertTrue(text.contains("ties_merge(weights: 0.30078125, 0.400390625, normalize)"), text)
        let exact = try dump(taskArithmetic("ties", dtype: "float32", extra: "density: 0.5"))
        XCTAssertTrue(exact.contains("ties_merge(weights: 0.3, 0.4, normalize)"), exact)
    }

    func testBreadcrumbsAndDellaLinearMixInTheMergeDType() throws {
        XCTAssertTrue(try dump(taskArithmetic("breadcrumbs", dtype: "bfloat16", extra: "density: 0.5"))
            .contains("task_mix(weights: 0.30078125, 0.400390625)"))
    }

    func testDareDensityIsABF16ProbabilityOnlyOnBF16() throws {
        let bf16 = try dump(taskArithmetic("dare_linear", dtype: "bfloat16", extra: "density: 0.3"))
        XCTAssertTrue(bf16.contains("random_prune(density=0.30078125, rescale"), bf16)
        XCTAssertTrue(bf16.contains("task_mix(weights: 0.30078125, 0.400390625)"), bf16)
        setUp()
        let f16 = try dump(taskArithmetic("dare_ties", dtype: "float16", extra: "density: 0.3"))
        XCTAssertTrue(f16.contains("random_prune(density=0.3, rescale"), "f16 draws in f32\n" + f16)
    }

    // MARK: linear: f32 weights

    private func linear(dtype: String) -> String {
        """
        merge_method: linear
        models:
          - model: $A
            parameters:
              weight: 0.4
          - model: $B
            parameters:
              weight: 0.3
          - model: $C
            parameters:
              weight: 0.3
        dtype: \(dtype)
        """
    }

    func testLinearOnBF16UsesF32WeightsNotBF16() throws {
        let text = try dump(linear(dtype: "bfloat16"))
        let w = [Double(Float(0.4)), Double(Float(0.3)), Double(Float(0.3))].map(formatAttribute).joined(separator: ", ")
        XCTAssertTrue(text.contains("linear_mix(weights: \(w), normalize)"), text)
        XCTAssertFalse(text.contains("0.30078125"))
    }

    func testLinearOnF32KeepsTheNormalizedWeightedSum() throws {
        XCTAssertTrue(try dump(linear(dtype: "float32")).contains("weighted_sum(0.4, 0.3, 0.3)"))
    }

    // MARK: multislerp: weights and their normalization in the merge dtype

    private func multislerp(dtype: String) -> String {
        """
        merge_method: multislerp
        models:
          - model: $A
            parameters:
              weight: 1
          - model: $B
            parameters:
              weight: 2
        dtype: \(dtype)
        """
    }

    func testMultislerpNormalizesInBF16() throws {
        // bf16(1 / 3) and bf16(2 / 3).
        XCTAssertTrue(try dump(multislerp(dtype: "bfloat16")).contains("multislerp(weights: 0.333984375, 0.66796875,"))
        setUp()
        XCTAssertTrue(try dump(multislerp(dtype: "float32")).contains(
            "multislerp(weights: \(formatAttribute(1.0 / 3)), \(formatAttribute(2.0 / 3)),"))
    }

    // MARK: methods whose scalars stay Python floats

    func testSlerpNuslerpNearswapAndPassthroughKeepTheirScalars() throws {
        let slerp = try dump("merge_method: slerp\nbase_model: $A\nmodels:\n  - model: $A\n  - model: $B\nparameters:\n  t: 0.3\ndtype: bfloat16")
        XCTAssertTrue(slerp.contains("slerp(t=0.3)"), slerp)
        setUp()
        let nearswap = try dump("merge_method: nearswap\nbase_model: $A\nmodels:\n  - model: $A\n  - model: $B\nparameters:\n  t: 0.3\ndtype: bfloat16")
        XCTAssertTrue(nearswap.contains("nearswap(t=0.3)"), nearswap)
        setUp()
        let passthrough = try dump("merge_method: passthrough\nmodels:\n  - model: $A\n    parameters:\n      scale: 0.3\ndtype: bfloat16")
        XCTAssertTrue(passthrough.contains("scale(0.3)"), passthrough)
        setUp()
        let nuslerp = try dump("""
            merge_method: nuslerp
            models:
              - model: $A
                parameters:
                  weight: 0.7
              - model: $B
                parameters:
                  weight: 0.3
            dtype: bfloat16
            """)
        XCTAssertTrue(nuslerp.contains("nuslerp(t=0.3,"), nuslerp)
    }
}
