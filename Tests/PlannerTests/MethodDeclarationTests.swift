import Foundation
import XCTest
import IR
import Parser
@testable import Planner

/// The method declarations: the registry, typed resolution with kinds and ranges, the generated docs.
final class MethodDeclarationTests: PlannerTestCase {
    private let q = "model.layers.0.self_attn.q_proj.weight"

    override func setUp() {
        super.setUp()
        fx.add("A", FakeModel(layers: 2))
        fx.add("B", FakeModel(layers: 2))
        fx.add("C", FakeModel(layers: 2))
    }

    // MARK: registry

    func testRegistryHasMergekitsTwentyMethodsOnce() {
        let names = MethodRegistry.specs.map(\.name)
        XCTAssertEqual(Set(names), [
            "linear", "task_arithmetic", "ties", "breadcrumbs", "breadcrumbs_ties", "dare_ties", "dare_linear",
            "della", "della_linear", "ram", "ramplus_tl", "slerp", "model_stock", "passthrough", "nearswap", "sce",
            "nuslerp", "multislerp", "karcher", "arcee_fusion",
        ])
        XCTAssertEqual(names.count, 20, "no method is listed twice")
        XCTAssertEqual(MethodRegistry.spec(named: "ties")?.name, "ties")
        XCTAssertNil(MethodRegistry.spec(named: "frobnicate"))
    }

    func testDeclarationsAreConsistent() {
        for spec in MethodRegistry.specs {
            XCTAssertFalse(spec.summary.isEmpty, spec.name)
            XCTAssertFalse(spec.reference.isEmpty, spec.name)
            XCTAssertEqual(Set(spec.parameters.map(\.name)).count, spec.parameters.count, "\(spec.name): duplicate parameter")
            for p in spec.parameters {
                if p.kind == .bool { XCTAssertNil(p.range, "\(spec.name).\(p.name): a bool has no range") }
                if case .defaultValue(let value) = p.requirement {
                    switch (p.kind, value) {
                    case (.float, .number(let x)):
                        XCTAssertTrue(x.isFinite && (p.range?.contains(x) ?? true), "\(spec.name).\(p.name): default \(x)")
                    case (.bool, .bool): break
                    default: XCTFail("\(spec.name).\(p.name): default \(value) is not a \(p.kind)")
                    }
                }
            }
        }
    }

    /// The defaults that differ between the generalized task arithmetic methods follow mergekit's registry
    /// (`normalize` is true only for ties and della; `rescale` true for the DARE and DELLA methods).
    func testTaskArithmeticDefaultsFollowMergekit() {
        func requirement(_ method: String, _ name: String) -> ParameterRequirement? {
            MethodRegistry.spec(named: method)?.parameter(named: name)?.requirement
        }
        for method in ["task_arithmetic", "ties", "breadcrumbs", "breadcrumbs_ties", "dare_ties", "dare_linear",
                       "della", "della_linear"] {
            XCTAssertEqual(requirement(method, "normalize"), .defaultValue(.bool(["ties", "della"].contains(method))), method)
            XCTAssertEqual(requirement(method, "rescale"), .defaultValue(.bool(method.hasPrefix("da") || method.hasPrefix("del"))),
                           method)
            XCTAssertEqual(requirement(method, "density"), .defaultValue(.number(1)), method)
            XCTAssertEqual(requirement(method, "weight"), .required, method)
        }
        XCTAssertEqual(requirement("della", "epsilon"), .defaultValue(.number(0.15)))
        XCTAssertNil(requirement("ties", "epsilon"))
        XCTAssertEqual(requirement("breadcrumbs", "gamma"), .defaultValue(.number(0.01)))
        XCTAssertNil(requirement("dare_ties", "gamma"))
    }

    // MARK: typed resolution

    private func spec(_ name: String, _ kind: ParameterKind, _ requirement: ParameterRequirement,
                      range: ParameterRange? = nil) -> ParameterSpec {
        ParameterSpec(name, kind, .shared, requirement, range: range)
    }

    private func resolver(_ name: String, _ value: ParameterValue, at location: SourceLocation = loc(3, 6),
                          t: Double = 0) -> ParameterResolver {
        ParameterResolver(scopes: [ParameterMap([ParameterEntry(name: name, value: value, location: location)])], t: t)
    }

    func testResolutionConvertsToTheDeclaredKind() throws {
        let t = try resolver("t", .scalar(.string("0.25"))).value(of: spec("t", .float, .required), tensor: q)
        XCTAssertEqual(t, ResolvedParameter(value: .number(0.25), location: loc(3, 6)))
        let n = try resolver("normalize", .scalar(.string("yes"))).value(of: spec("normalize", .bool, .required), tensor: q)
        XCTAssertEqual(n, ResolvedParameter(value: .bool(true), location: loc(3, 6)))
        let g = try resolver("t", .gradient([.number(0), .number(1)]), t: 0.25)
            .value(of: spec("t", .float, .required), tensor: q)
        XCTAssertEqual(g?.value, .number(0.25), "gradients are interpolated, then typed")
    }

    func testUnsetParameterTakesItsDefaultWithoutLocation() throws {
        let empty = ParameterResolver(scopes: [], t: 0)
        XCTAssertEqual(try empty.value(of: spec("lambda", .float, .defaultValue(.number(1))), tensor: q),
                       ResolvedParameter(value: .number(1), location: nil))
        XCTAssertNil(try empty.value(of: spec("t", .float, .required), tensor: q))
        XCTAssertNil(try empty.value(of: spec("scale", .float, .optional), tensor: q))
    }

    func testNonFiniteNumbersAreRejected() {
        for bad in [Double.nan, .infinity, -.infinity] {
            XCTAssertThrowsError(try resolver("w", .scalar(.number(bad))).value(of: spec("w", .float, .required), tensor: q)) {
                XCTAssertEqual("\($0)", "t.yml:3:6: w must be a finite number, found \(bad) for tensor '\(q)'")
            }
        }
    }

    func testOutOfRangeNamesTheRangeValueAndTensor() {
        let density = spec("density", .float, .defaultValue(.number(1)), range: .unitInterval)
        XCTAssertThrowsError(try resolver("density", .scalar(.number(-0.5))).value(of: density, tensor: q)) {
            XCTAssertEqual("\($0)", "t.yml:3:6: density must be between 0 and 1, found -0.5 for tensor '\(q)'")
        }
        let whole = spec("max_iter", .float, .defaultValue(.number(10)), range: ParameterRange(lower: 0, integral: true))
        XCTAssertThrowsError(try resolver("max_iter", .scalar(.number(2.5))).value(of: whole, tensor: q)) {
            XCTAssertEqual("\($0)", "t.yml:3:6: max_iter must be a whole number at least 0, found 2.5 for tensor '\(q)'")
        }
        XCTAssertEqual(try resolver("max_iter", .scalar(.number(3))).value(of: whole, tensor: q)?.value, .number(3))
    }

    func testWrongKindNamesTheTensor() {
        XCTAssertThrowsError(try resolver("normalize", .scalar(.number(2))).value(of: spec("normalize", .bool, .required),
                                                                                  tensor: q)) {
            XCTAssertEqual("\($0)", "t.yml:3:6: normalize must be true or false, found 2 for tensor '\(q)'")
        }
    }

    func testRangeWording() {
        XCTAssertEqual(ParameterRange.unitInterval.requirementText, "between 0 and 1")
        XCTAssertEqual(ParameterRange.nonNegative.requirementText, "at least 0")
        XCTAssertEqual(ParameterRange(lower: 0, lowerInclusive: false, upper: 1).requirementText, "in (0, 1]")
        XCTAssertEqual(ParameterRange(upper: 1, upperInclusive: false).requirementText, "less than 1")
        XCTAssertEqual(ParameterRange.nonNegative.description, "[0, ∞)")
        XCTAssertFalse(ParameterRange(lower: 0, lowerInclusive: false).contains(0))
        XCTAssertTrue(ParameterRange.unitInterval.contains(1))
    }

    // MARK: ranges in configs (file:line:col of the value, and the tensor)

    func testNegativeDensityIsRejectedAtItsPosition() {
        fx.assertError("""
            merge_method: ties
            base_model: $A
            models:
              - model: $A
              - model: $B
                parameters: {weight: 1, density: -0.5}
            """, prefix: "t.yml:6:38: ", contains: ["density must be at least 0, found -0.5 for tensor 'model.embed_tokens.weight'"])
    }

    func testNaNWeightIsRejectedAtItsPosition() {
        fx.assertError("""
            merge_method: linear
            models:
              - model: $A
                parameters:
                  weight: .nan
              - model: $B
                parameters:
                  weight: 1
            """, prefix: "t.yml:5:15: ", contains: ["weight must be a finite number, found nan", "model.embed_tokens.weight"])
    }

    func testInfiniteWeightInAGradientIsRejected() {
        fx.assertError("""
            merge_method: task_arithmetic
            base_model: $A
            models:
              - model: $A
              - model: $B
                parameters:
                  weight: [1, .inf]
            """, prefix: "t.yml:7:15: ", contains: ["weight must be a finite number, found inf in its gradient",
                                                    "model.embed_tokens.weight"])
    }

    func testFilteredOutOfRangeValueNamesTheMatchingTensor() {
        fx.assertError("""
            merge_method: della
            base_model: $A
            models:
              - model: $A
              - model: $B
                parameters:
                  weight: 1
                  epsilon:
                    - filter: mlp
                      value: 2
                    - value: 0.1
            """, prefix: "t.yml:9:11: ", contains: ["epsilon must be between 0 and 1, found 2", "mlp.up_proj.weight"])
    }

    func testKarcherIterationsMustBeWhole() {
        fx.assertError("""
            merge_method: karcher
            models:
              - model: $A
              - model: $B
            parameters:
              max_iter: 2.5
            """, prefix: "t.yml:6:13: ", contains: ["max_iter must be a whole number between -1000000000 and 1000000000, found 2.5"])
    }

    func testBoolParameterOfWrongKindNamesTheTensor() {
        fx.assertError("""
            merge_method: ties
            base_model: $A
            models:
              - model: $A
              - model: $B
                parameters: {weight: 1}
            parameters:
              normalize: sometimes
            """, prefix: "t.yml:8:14: ", contains: ["normalize must be true or false, found \"sometimes\" for tensor"])
    }

    // MARK: typed reads in the lowering

    func testContextReadsDeclaredParametersAndRecordsUndeclaredOnes() throws {
        var shared = ResolvedParameters()
        shared["t"] = ResolvedParameter(value: .number(0.3), location: loc(2, 4))
        let recipe = TensorRecipe(output: "x", inputs: [], baseIndex: nil, shared: shared,
                                  computeType: TensorType(dtype: .f32, shape: [2]), position: nil)
        let declared = Parameter<Double>.required("t", .shared, range: .unitInterval)
        let spec = MethodSpec(name: "m", summary: "s", reference: "r", parameters: [declared.spec], base: .ignored)
        let context = LoweringContext(spec: spec, recipe: recipe, builder: GraphBuilder(), stage: "s",
                                      location: loc(1, 1), randomSeed: 0)
        XCTAssertEqual(context[declared], 0.3)
        XCTAssertEqual(context.location(of: declared), loc(2, 4))
        XCTAssertTrue(context.undeclaredReads.isEmpty)
        // A key with the same name but another declaration (here: another range) is not the declared parameter.
        _ = context[Parameter<Double>.required("t", .shared)]
        _ = context[Parameter<Double?>.optional("scale", .shared)]
        XCTAssertEqual(context.undeclaredReads, ["t", "scale"])
    }

    // MARK: residual_weight

    func testResidualWeightIsWarnedAboutAndIgnored() throws {
        let yaml = """
            merge_method: passthrough
            slices:
              - sources:
                  - model: $A
                    layer_range: [0, 2]
                residual_weight: 0.5
            """
        let plan = try fx.compile(yaml)
        XCTAssertEqual(plan.warnings, ["t.yml:6:22: warning: residual_weight is not used by mergekit 0.1.5's merge "
                                       + "planner (mergekit/plan.py) and is ignored"])
        let without = try fx.compile(yaml.replacingOccurrences(of: "\n    residual_weight: 0.5", with: ""))
        XCTAssertEqual(without.warnings, [])
        XCTAssertEqual(plan.dump().split(separator: "\n").filter { !$0.hasPrefix("//") && !$0.contains("warning") },
                       without.dump().split(separator: "\n").filter { !$0.hasPrefix("//") && !$0.contains("warning") })
    }

    // MARK: generated docs

    /// The README's "Merge methods" table is the generated one, so docs and declarations cannot drift.
    func testReadmeTableIsTheGeneratedTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let heading = try XCTUnwrap(readme.range(of: "\n## Merge methods\n\n"), "README has no '## Merge methods' section")
        let rest = readme[heading.upperBound...]
        let end = rest.range(of: "\n\n")?.lowerBound ?? rest.endIndex
        XCTAssertEqual(String(rest[..<end]) + "\n", MethodRegistry.markdownTable(),
                       "regenerate the table with `mergegraph methods --markdown`")
    }

    func testGeneratedDocsHaveOneRowPerMethod() {
        let table = MethodRegistry.markdownTable().split(separator: "\n")
        XCTAssertEqual(table.count, 2 + 20)
        XCTAssertTrue(table.contains { $0.hasPrefix("| `slerp` | `t` (required, in [0, 1]) | needs `base_model`; exactly 2 models (base included) |") })
        let lines = MethodRegistry.listing().split(separator: "\n")
        XCTAssertEqual(lines.count, 20)
        XCTAssertTrue(lines.contains("linear: weight (per model, required), normalize (default true); base_model is an ordinary input"))
        XCTAssertTrue(lines.contains("arcee_fusion: no parameters; needs base_model; exactly 2 models (base included)"))
    }
}
