import XCTest
import IR
import Parser
@testable import Planner

/// `PlannerOptions.allStages`: every named stage written to OUT_DIR/NAME from one graph.
final class AllStagesTests: PlannerTestCase {
    private let chain = """
        name: s1
        merge_method: passthrough
        models:
          - model: $A
        ---
        name: s2
        merge_method: linear
        models:
          - model: s1
            parameters: {weight: 1}
          - model: $B
            parameters: {weight: 1}
        ---
        merge_method: linear
        models:
          - model: s2
            parameters: {weight: 1}
          - model: $C
            parameters: {weight: 3}
        """

    private func compileAll(_ yaml: String, shardSize: Int = 5_000_000_000) throws -> Plan {
        try Compiler.compile(fx.parse(yaml), catalog: fx.catalog, costs: testCosts,
                            options: PlannerOptions(outShardSize: shardSize, allStages: true))
    }

    override func setUp() {
        super.setUp()
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        fx.add("C", FakeModel(layers: 1))
    }

    func testEveryStageGetsADirectory() throws {
        let plan = try compileAll(chain)
        XCTAssertEqual(plan.targets.map(\.directory), ["s1", "s2", ""])
        XCTAssertEqual(plan.targets.map(\.stage), ["s1", "s2", "<final>"])
        let names = llamaNames(layers: 1)
        XCTAssertEqual(plan.graph.outputs.map(\.path),
                       names.map { "s1/\($0)" } + names.map { "s2/\($0)" } + names)
        XCTAssertEqual(plan.schedule.shards.map(\.fileName),
                       ["s1/model.safetensors", "s2/model.safetensors", "model.safetensors"])
        XCTAssertEqual(plan.graph.models.map(\.path), [fx.path("A"), fx.path("B"), fx.path("C")])
        XCTAssertEqual(plan.loadCount, 3 * names.count, "each input tensor is loaded once for all three outputs")
        assertValidSchedule(plan.graph, plan.schedule)
    }

    func testStageOutputsShareValues() throws {
        let plan = try compileAll(chain)
        func value(_ path: String) throws -> ValueID {
            try XCTUnwrap(plan.graph.outputs.first { $0.path == path }?.value, path)
        }
        let s1 = try value("s1/lm_head.weight")
        let s2 = try value("s2/lm_head.weight")
        let final = try value("lm_head.weight")
        XCTAssertNotNil(plan.load(s1), "s1 is a passthrough of A")
        XCTAssertEqual(plan.graph[s2].operands.first, s1)
        XCTAssertEqual(plan.graph[final].operands.first, s2)
        XCTAssertEqual(plan.graph[final].op, .weightedSum([0.25, 0.75]))
    }

    func testEachTargetHasItsOwnConfigAndDonor() throws {
        let plan = try compileAll(chain)
        XCTAssertEqual(plan.targets.map(\.tokenizerDonor), [fx.path("A"), fx.path("A"), fx.path("A")])
        for target in plan.targets {
            XCTAssertEqual(target.configJSON?["num_hidden_layers"]?.intValue, 1, target.stage)
        }
    }

    func testWithoutFinalDocument() throws {
        let plan = try compileAll("""
            name: only
            merge_method: passthrough
            models:
              - model: $A
            """)
        XCTAssertEqual(plan.targets.map(\.directory), ["only"])
        XCTAssertTrue(plan.graph.outputs.allSatisfy { $0.directory == "only" })
    }

    func testNeedsNamedStages() {
        do {
            _ = try compileAll("merge_method: passthrough\nmodels:\n  - model: $A\n")
            XCTFail("expected an error")
        } catch {
            XCTAssertTrue(String(describing: error).hasPrefix("t.yml: "), String(describing: error))
            XCTAssertTrue(String(describing: error).contains("needs named stages"), String(describing: error))
        }
    }

    func testErrorInANamedStageIsReported() {
        do {
            _ = try compileAll("""
                name: broken
                merge_method: foo
                models:
                  - model: $A
                """)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(String(describing: error), "t.yml:2:15: unknown merge method 'foo' (`mergegraph methods` lists them)")
        }
    }

    /// An error in the unnamed (final) document must not be dropped silently.
    func testErrorInTheFinalDocumentIsReported() throws {
        let yaml = """
            name: good
            merge_method: passthrough
            models:
              - model: $A
            ---
            merge_method: foo
            models:
              - model: good
            """
        do {
            let plan = try compileAll(yaml)
            XCTFail("expected an error, got targets \(plan.targets.map(\.directory))")
        } catch let error as PlanError {
            XCTAssertEqual(String(describing: error), "t.yml:6:15: unknown merge method 'foo' (`mergegraph methods` lists them)")
        }
    }
}
