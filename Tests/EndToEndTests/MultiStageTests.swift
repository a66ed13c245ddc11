import Checkpoint
import Executor
import Foundation
import IR
import Planner
import XCTest

/// Multi-document configs (mergekit-multi) compile into one graph.
final class MultiStageTests: XCTestCase {
    func chainText() throws -> String {
        try String(contentsOfFile: "\(Fixtures.conformance)/cases/ties_then_slerp/config.yml", encoding: .utf8)
    }

    func testEveryInputTensorIsLoadedOnceAcrossStages() throws {
        let plan = try Fixtures.compile(try chainText())
        var loads: [String: Int] = [:]
        for node in plan.graph.nodes {
            if case .load(let m, let t) = node.op { loads["\(m)/\(t)", default: 0] += 1 }
        }
        XCTAssertEqual(plan.graph.models.count, 4)
        XCTAssertEqual(loads.count, 4 * 39, "every (model, tensor) pair the chain reads")
        XCTAssertTrue(loads.values.allSatisfy { $0 == 1 })
        XCTAssertGreaterThan(plan.graph.loadRequests, loads.count, "stages asked for shared inputs more than once")
        let computed = plan.schedule.steps.map(\.value)
        XCTAssertEqual(computed.count, Set(computed).count, "each node runs once")
        let sharedDelta = plan.graph.nodes.first { $0.op == .sub && $0.stages == ["ties-ab", "ties-bc"] }
        XCTAssertNotNil(sharedDelta, "ft-b's task vector is computed once for both TIES stages")
    }

    func testRunWritesNothingOutsideOutDir() throws {
        let work = Fixtures.temporaryDirectory("chain")
        let tmp = Fixtures.temporaryDirectory("tmpdir")
        defer { for d in [work, tmp] { try? FileManager.default.removeItem(atPath: d) } }
        let process = Process()
        process.executableURL = CommandLineTests.binary
        process.arguments = ["run", "cases/ties_then_slerp/config.yml", "\(work)/out"]
        process.currentDirectoryURL = URL(fileURLWithPath: Fixtures.conformance)
        process.environment = ["TMPDIR": tmp, "PATH": "/usr/bin:/bin"]
        let before = try FileManager.default.contentsOfDirectory(atPath: "\(Fixtures.conformance)/cases/ties_then_slerp")
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work), ["out"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(work)/out").sorted(),
                       ["README.md", "config.json", "mergekit_config.yml", "model.safetensors"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(Fixtures.conformance)/cases/ties_then_slerp"), before)
        XCTAssertEqual(try CheckpointComparison.problems(actual: "\(work)/out", expected: Fixtures.expected("ties_then_slerp")), [])
    }

    func testAllStagesWritesEachNamedStageFromOneGraph() throws {
        let out = Fixtures.temporaryDirectory("all")
        let single = Fixtures.temporaryDirectory("single")
        defer { for d in [out, single] { try? FileManager.default.removeItem(atPath: d) } }
        let text = try chainText()
        let plan = try Fixtures.compile(text, options: PlannerOptions(allStages: true))
        XCTAssertEqual(plan.targets.map(\.directory), ["ties-ab", "ties-bc", ""])
        try Fixtures.inConformanceFolder {
            let executor = PlanExecutor(plan: plan, catalog: LocalCheckpointCatalog(), options: ExecutionOptions(overwrite: true))
            try executor.run(outputDirectory: out)
            let stageOnly = try Fixtures.compile(text, options: PlannerOptions(stage: "ties-bc"))
            let alone = PlanExecutor(plan: stageOnly, catalog: LocalCheckpointCatalog(), options: ExecutionOptions(overwrite: true))
            try alone.run(outputDirectory: single)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(out)/ties-bc/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: "\(single)/model.safetensors")))
        XCTAssertEqual(try CheckpointComparison.problems(actual: out, expected: Fixtures.expected("ties_then_slerp")), [])
    }

    func testARenamingStageCostsNoNode() throws {
        let direct = """
            models:
              - model: models/llama-ft-a
              - model: models/llama-ft-b
            merge_method: slerp
            base_model: models/llama-ft-a
            parameters: {t: 0.5}
            """
        let renamed = """
            name: alias
            models:
              - model: models/llama-ft-b
            merge_method: passthrough
            ---
            models:
              - model: models/llama-ft-a
              - model: alias
            merge_method: slerp
            base_model: models/llama-ft-a
            parameters: {t: 0.5}
            """
        XCTAssertEqual(try Fixtures.compile(renamed).graph.nodes.count, try Fixtures.compile(direct).graph.nodes.count)
    }

    func assertCompileError(_ text: String, options: PlannerOptions = PlannerOptions(), contains phrases: [String],
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Fixtures.compile(text, options: options), file: file, line: line) { error in
            for phrase in phrases {
                XCTAssertTrue("\(error)".contains(phrase), "'\(phrase)' not in: \(error)", file: file, line: line)
            }
        }
    }

    func testDuplicateStageName() {
        assertCompileError("""
            name: a
            models: [{model: models/llama-ft-a}]
            merge_method: passthrough
            ---
            name: a
            models: [{model: models/llama-ft-b}]
            merge_method: passthrough
            ---
            models: [{model: a}]
            merge_method: passthrough
            """, contains: ["chain.yml:5:7:", "stage name 'a' is used twice", "chain.yml:1:7"])
    }

    func testReferenceCyclePrintsTheCycle() {
        assertCompileError("""
            name: a
            models: [{model: b}]
            merge_method: passthrough
            ---
            name: b
            models: [{model: a}]
            merge_method: passthrough
            ---
            models: [{model: a}]
            merge_method: passthrough
            """, contains: ["reference cycle between stages: a → b → a", "chain.yml:6:"])
    }

    func testStageShadowingAModelDirectory() {
        assertCompileError("""
            name: models/llama-ft-a
            models: [{model: models/llama-ft-b}]
            merge_method: passthrough
            ---
            models: [{model: models/llama-ft-a}]
            merge_method: passthrough
            """, contains: ["chain.yml:5:", "names both a stage and an existing model directory", "./models/llama-ft-a"])
    }

    func testNoFinalStageWithoutStageOption() {
        let text = """
            name: only
            models: [{model: models/llama-ft-a}]
            merge_method: passthrough
            """
        assertCompileError(text, contains: ["no final stage", "--stage NAME"])
        XCTAssertNoThrow(try Fixtures.compile(text, options: PlannerOptions(stage: "only")))
        assertCompileError(text, options: PlannerOptions(stage: "other"), contains: ["no stage named 'other'"])
    }
}
