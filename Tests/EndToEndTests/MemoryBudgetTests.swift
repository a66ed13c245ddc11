import Checkpoint
import Executor
import Foundation
import IR
import Parser
import Planner
import XCTest

/// Chunked execution: the same bytes for any chunk size, never more memory than the planner predicted,
/// and a budget too small to run is a compile-time error naming the smallest workable one.
final class MemoryBudgetTests: XCTestCase {
    /// The implemented conformance cases and the tokenizer cases, with their folders.
    static var cases: [(folder: String, name: String)] {
        ConformanceTests.implemented.map { (Fixtures.conformance, $0) } + Fixtures.tokenizerCaseNames.map { (Fixtures.tokenizer, $0) }
    }

    /// The bytes of every file in an output directory, by relative path, but the model card (which states the
    /// predicted peak memory, and so differs between budgets).
    private func files(_ directory: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        let fm = FileManager.default
        for path in fm.enumerator(atPath: directory)?.compactMap({ $0 as? String }) ?? [] {
            var isDirectory: ObjCBool = false
            let full = "\(directory)/\(path)"
            if fm.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
               (path as NSString).lastPathComponent != "README.md" {
                result[path] = try Data(contentsOf: URL(fileURLWithPath: full))
            }
        }
        return result
    }

    /// One row per chunk, a few rows, whole tensors, with and without keeping statistics operands whole: every
    /// conformance case writes identical files, and the executor never holds more than the planner predicted.
    func testEveryCaseGivesIdenticalBytesForAnyChunkSizeWithinThePrediction() throws {
        XCTAssertEqual(ConformanceTests.implemented.count, 26)
        XCTAssertEqual(Fixtures.tokenizerCaseNames.count, 6)
        for (folder, name) in Self.cases {
            var outputs: [[String: Data]] = []
            for (maxChunk, threads, retain) in [(Int.max / 8, 2, false), (1, 1, false), (100, 2, true), (1000, 3, false),
                                                (1, 2, true)] {
                let out = Fixtures.temporaryDirectory("chunks-\(name)")
                defer { try? FileManager.default.removeItem(atPath: out) }
                let (plan, peak) = try Fixtures.merge(
                    case: name, into: out, threads: threads,
                    limits: Scheduler.Limits(maxChunkElements: maxChunk, threads: threads, retainAcrossPasses: retain),
                    in: folder)
                XCTAssertLessThanOrEqual(peak, plan.schedule.predictedPeakBytes,
                                         "\(name): held more than predicted with chunks of ≤ \(maxChunk) elements")
                XCTAssertGreaterThan(peak, 0)
                if maxChunk == 1 {
                    XCTAssertTrue(plan.schedule.groups.allSatisfy { $0.chunkRows == 1 }, name)
                }
                outputs.append(try files(out))
            }
            XCTAssertFalse(outputs[0].isEmpty, name)
            for (i, other) in outputs.enumerated().dropFirst() {
                XCTAssertEqual(Set(other.keys), Set(outputs[0].keys), "\(name) run \(i)")
                for (path, data) in outputs[0] {
                    XCTAssertTrue(other[path] == data, "\(name): \(path) differs in run \(i)")
                }
            }
        }
    }

    /// Groups run on two lanes (`Scheduler.Limits.lanes`) write the tensors one group at a time writes, on every
    /// case: every group concurrent (the same files, byte for byte), some alone (a budget of twice the median
    /// group's lane bytes) with small chunks, and small shards (each finished shard hashed as it is written). The
    /// run holds at most the predicted peak.
    func testTwoLanesWriteTheSameBytesWithinThePrediction() throws {
        var mixed = 0
        for (folder, name) in Self.cases {
            let text = try String(contentsOfFile: "\(folder)/\(Fixtures.caseConfig(name))", encoding: .utf8)
            /// The files of the merge's output, and its tensors' stored bytes by directory and name.
            func merge(_ limits: Scheduler.Limits, shardBytes: Int = 5_000_000_000) throws
                -> (files: [String: Data], tensors: [String: Data], plan: Plan) {
                let out = Fixtures.temporaryDirectory("lanes-\(name)")
                defer { try? FileManager.default.removeItem(atPath: out) }
                return try Fixtures.inFolder(folder) {
                    let catalog = LocalCheckpointCatalog()
                    let plan = try Compiler.compile(try ConfigParser.parse(text: text, file: Fixtures.caseConfig(name)),
                                                    catalog: catalog, costs: StreamingCostModel(),
                                                    options: PlannerOptions(outShardSize: shardBytes, limits: limits))
                    let executor = PlanExecutor(plan: plan, catalog: catalog, options: ExecutionOptions(overwrite: true))
                    try executor.run(outputDirectory: out)
                    XCTAssertLessThanOrEqual(executor.memory.peakBytes, plan.schedule.predictedPeakBytes,
                                             "\(name), \(limits)")
                    let files = try files(out)
                    var tensors: [String: Data] = [:]
                    for folder in Set(files.keys.filter { $0.hasSuffix(".safetensors") }.map { ($0 as NSString).deletingLastPathComponent }) {
                        let model = try SafetensorsModel(directory: folder.isEmpty ? out : "\(out)/\(folder)")
                        for tensorName in model.tensorNames {
                            let t = model.tensor(tensorName)!
                            var bytes = Data(count: t.elementCount * t.dtype.byteSize)
                            try bytes.withUnsafeMutableBytes { buffer in
                                guard let base = buffer.baseAddress, buffer.count > 0 else { return }
                                try model.readBytes(fileIndex: t.fileIndex, offset: t.fileOffset, count: buffer.count, into: base)
                            }
                            tensors["\(folder)/\(tensorName)"] = bytes
                        }
                    }
                    return (files, tensors, plan)
                }
            }
            let expected = try merge(Scheduler.Limits(threads: 2))
            let roomy = try merge(Scheduler.Limits(threads: 2, lanes: 2))
            XCTAssertEqual(roomy.plan.schedule.groups.map(\.concurrent), endsOnLanes(roomy.plan), name)
            XCTAssertEqual(Set(roomy.files.keys), Set(expected.files.keys), name)
            for (path, data) in expected.files { XCTAssertTrue(roomy.files[path] == data, "\(name): \(path) differs with lanes") }
            let laneBytes = roomy.plan.schedule.groups.map(\.laneBytes).sorted()
            let smallest = roomy.plan.schedule.groups.map { $0.bytes(rows: 1) }.max()!
            let budget = max(smallest + 5000, 2 * laneBytes[laneBytes.count / 2])
            for (limits, shardBytes) in [(Scheduler.Limits(budgetBytes: budget, maxChunkElements: 100, threads: 2, lanes: 2), 5_000_000_000),
                                         (Scheduler.Limits(maxChunkElements: 64, threads: 3, lanes: 2), 2000)] {
                let actual = try merge(limits, shardBytes: shardBytes)
                if Set(actual.plan.schedule.groups.map(\.concurrent)).count == 2 { mixed += 1 }
                XCTAssertEqual(Set(actual.tensors.keys), Set(expected.tensors.keys), name)
                for (tensor, data) in expected.tensors {
                    XCTAssertTrue(actual.tensors[tensor] == data, "\(name): \(tensor) differs with lanes, \(limits), shards of \(shardBytes) bytes")
                }
            }
        }
        XCTAssertGreaterThan(mixed, 3, "some cases run some groups alone and others beside each other")
    }

    /// A group runs on a lane only if it holds there the operands it holds with the whole budget (bf16 multislerp
    /// holding its operands takes half the time, more than a lane gains); otherwise it runs alone, holding them.
    /// (Holding granted wherever it fits: these tiny tensors do not amortize it, `Limits.heldStepsPerPeakByte`.)
    func testAGroupRunsOnALaneOnlyIfItKeepsHoldingItsOperands() throws {
        let text = "{merge_method: multislerp, base_model: models/llama-base, models: [{model: models/llama-ft-a, "
            + "parameters: {weight: 0.5}}, {model: models/llama-ft-b, parameters: {weight: 0.3}}, "
            + "{model: models/llama-ft-c, parameters: {weight: 0.2}}], dtype: bfloat16}"
        let roomy = try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(threads: 2, lanes: 2, heldStepsPerPeakByte: 0)))
        XCTAssertEqual(roomy.schedule.groups.map(\.concurrent), endsOnLanes(roomy))
        XCTAssertTrue(roomy.schedule.groups.allSatisfy { !$0.holding.isEmpty })
        // Room to hold the largest group's operands alone, not on a lane, and the median group's on a lane.
        let lanes = roomy.schedule.groups.map(\.laneBytes).sorted()
        let budget = max(roomy.schedule.groups.map(\.peakBytes).max()!, 2 * lanes[lanes.count / 2]) + 1000
        let one = try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(budgetBytes: budget, threads: 2,
                                                                                             heldStepsPerPeakByte: 0)))
        let two = try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(budgetBytes: budget, threads: 2,
                                                                                             lanes: 2, heldStepsPerPeakByte: 0)))
        XCTAssertEqual(two.schedule.groups.map(\.holding), one.schedule.groups.map(\.holding))
        XCTAssertTrue(two.schedule.groups.contains { !$0.concurrent && !$0.holding.isEmpty })
        XCTAssertTrue(two.schedule.groups.contains(where: \.concurrent))
        for (g, group) in two.schedule.groups.enumerated() where !group.concurrent {
            XCTAssertEqual(group, one.schedule.groups[g], "a group alone is planned as with one lane")
        }
        XCTAssertLessThanOrEqual(two.schedule.laneWindowBytes, budget)
        // No more lanes than groups on them: 1000 threads on this model's groups.
        let many = try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(threads: 1000, lanes: 1000, heldStepsPerPeakByte: 0)))
        let onLanes = many.schedule.groups.filter(\.concurrent)
        XCTAssertEqual(many.schedule.lanes, onLanes.count)
        // The window: every lane running the largest group, and the most a finished group keeps until written.
        XCTAssertEqual(many.schedule.laneWindowBytes, onLanes.count * onLanes.map(\.laneBytes).max()!
                       + onLanes.map { $0.outputBytes + $0.writerBytes }.max()!)
    }

    /// The plan's predicted peak is what the executor's memory account measures, byte for byte, on every case:
    /// the kernels declare their state phase by phase and the runner follows the schedule's sweeps and frees.
    func testPredictedPeakEqualsTheMeasuredPeak() throws {
        for (folder, name) in Self.cases {
            let text = try String(contentsOfFile: "\(folder)/\(Fixtures.caseConfig(name))", encoding: .utf8)
            let oneThread = try Fixtures.compile(text, file: Fixtures.caseConfig(name),
                                                 options: PlannerOptions(limits: Scheduler.Limits(threads: 1)), in: folder)
            let smallest = oneThread.schedule.groups.map { $0.bytes(rows: 1) }.max()!
            for limits in [Scheduler.Limits(threads: 2), Scheduler.Limits(budgetBytes: smallest + 5000, threads: 1)] {
                let out = Fixtures.temporaryDirectory("peak-\(name)")
                defer { try? FileManager.default.removeItem(atPath: out) }
                let (plan, peak) = try Fixtures.merge(case: name, into: out, limits: limits, in: folder)
                XCTAssertEqual(peak, plan.schedule.predictedPeakBytes, "\(name), budget \(limits.budgetBytes)")
            }
        }
    }

    /// A chain whose groups' holding would save no recomputation (an SCE and a TIES stage, then SLERP, in bf16) reports
    /// no declined holding: the plan's text said "holding declined on 39 tensor group(s) …: it would add 0 B for 0
    /// element-steps" (a new user's trial).
    func testHoldingThatSavesNothingIsNotReportedDeclined() throws {
        let text = """
            name: sce-ab
            merge_method: sce
            base_model: models/llama-base
            models: [{model: models/llama-ft-a}, {model: models/llama-ft-b}, {model: models/llama-ft-c}]
            parameters: {select_topk: 0.4}
            dtype: bfloat16
            ---
            name: ties-bc
            merge_method: ties
            base_model: models/llama-base
            models:
              - {model: models/llama-ft-b, parameters: {density: 0.7, weight: 0.6}}
              - {model: models/llama-ft-c, parameters: {density: 0.7, weight: 0.4}}
            dtype: bfloat16
            ---
            merge_method: slerp
            base_model: sce-ab
            models: [{model: sce-ab}, {model: ties-bc}]
            parameters: {t: 0.3}
            dtype: bfloat16
            """
        let plan = try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(threads: 2)))
        if let declined = plan.schedule.declinedHolding {
            XCTAssertGreaterThan(declined.savedElementSteps, 0)
            XCTAssertFalse(declined.groups.isEmpty)
        }
        XCTAssertNil(plan.schedule.declinedHolding, "no group's holding would save anything here")
    }

    /// Kernels holding their operands (bf16/f16 multislerp, DARE's, DELLA's and TIES's prunes): with budgets that grant
    /// holding on every tensor, on some and on none, and without keeping anything across passes, the bytes are the
    /// same and the measured peak is the predicted one.
    func testHoldingOperandsKeepsTheBytesAndThePrediction() throws {
        let models = "[{model: models/llama-ft-a, parameters: {weight: 0.5, density: 0.6}}, "
            + "{model: models/llama-ft-b, parameters: {weight: 0.3, density: 0.6}}, "
            + "{model: models/llama-ft-c, parameters: {weight: 0.2, density: 0.6}}]"
        let configs = [
            "{merge_method: multislerp, base_model: models/llama-base, models: \(models), dtype: bfloat16}",
            "{merge_method: multislerp, models: [{model: models/llama-ft-a, parameters: {weight: 1}}, "
                + "{model: models/llama-ft-b, parameters: {weight: 2}}], dtype: float16}",
            "{merge_method: dare_ties, base_model: models/llama-base, models: \(models), dtype: bfloat16}",
            "{merge_method: della, base_model: models/llama-base, models: \(models), "
                + "parameters: {epsilon: 0.1}, dtype: float16}",
            "{merge_method: ties, base_model: models/llama-base, models: \(models), dtype: bfloat16}",
            "{merge_method: breadcrumbs_ties, base_model: models/llama-base, models: \(models), dtype: float16}",
        ]
        for text in configs {
            let roomy = try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(threads: 2)))
            XCTAssertTrue(roomy.schedule.groups.contains { !$0.holding.isEmpty }, text)
            let bare = try Fixtures.compile(text, options: PlannerOptions(
                limits: Scheduler.Limits(threads: 2, retainAcrossPasses: false)))
            let smallest = bare.schedule.groups.map { $0.bytes(rows: 1) }.max()!
            var outputs: [[String: Data]] = []
            var granted: [Int] = []
            for limits in [Scheduler.Limits(threads: 2), Scheduler.Limits(budgetBytes: smallest + 20_000, threads: 2),
                           Scheduler.Limits(budgetBytes: smallest, threads: 1),
                           Scheduler.Limits(threads: 2, retainAcrossPasses: false)] {
                let out = Fixtures.temporaryDirectory("holding")
                defer { try? FileManager.default.removeItem(atPath: out) }
                let (plan, peak) = try Fixtures.merge(configText: text, into: out, limits: limits)
                XCTAssertEqual(peak, plan.schedule.predictedPeakBytes, "\(text), budget \(limits.budgetBytes)")
                granted.append(plan.schedule.groups.filter { !$0.holding.isEmpty }.count)
                outputs.append(try files(out))
            }
            XCTAssertEqual(granted.last, 0, text)
            XCTAssertGreaterThan(granted[0], granted.last!, text)
            for (i, other) in outputs.enumerated().dropFirst() {
                XCTAssertEqual(Set(other.keys), Set(outputs[0].keys), "\(text) run \(i)")
                for (path, data) in outputs[0] { XCTAssertTrue(other[path] == data, "\(text): \(path) differs in run \(i)") }
            }
        }
    }

    /// Values of bf16 and f16 kept whole across sweeps (SCE's masked task vectors, a chain stage's TIES result read
    /// by the slerp after it) are kept as 2-byte planes of their dtype (`ChunkGroup.keepsAsPlane`): the same bytes as
    /// recomputing them, and the measured peak is the predicted one, planes and the chunk buffers they are unpacked
    /// into counted.
    func testValuesKeptWholeAsPlanesKeepTheBytesAndThePrediction() throws {
        let models = "[{model: models/llama-ft-a, parameters: {weight: 0.5, density: 0.6}}, "
            + "{model: models/llama-ft-b, parameters: {weight: 0.3, density: 0.6}}, "
            + "{model: models/llama-ft-c, parameters: {weight: 0.2, density: 0.6}}]"
        func chain(_ dtype: String) -> String {
            "name: a\nmerge_method: ties\nbase_model: models/llama-base\nmodels: \(models)\ndtype: \(dtype)\n---\n"
                + "name: b\nmerge_method: ties\nbase_model: models/llama-base\nmodels: \(models)\n"
                + "parameters: {normalize: false}\ndtype: \(dtype)\n---\n"
                + "merge_method: slerp\nbase_model: a\nmodels: [{model: a}, {model: b}]\nparameters: {t: 0.3}\ndtype: \(dtype)\n"
        }
        let configs = [
            "{merge_method: sce, base_model: models/llama-base, models: \(models), parameters: {select_topk: 0.5}, dtype: bfloat16}",
            "{merge_method: sce, base_model: models/llama-base, models: \(models), parameters: {select_topk: 0.5}, dtype: float16}",
            chain("bfloat16"), chain("float16"),
        ]
        for text in configs {
            var outputs: [[String: Data]] = []
            for limits in [Scheduler.Limits(threads: 2), Scheduler.Limits(maxChunkElements: 96, threads: 1),
                           Scheduler.Limits(threads: 2, retainAcrossPasses: false)] {
                let out = Fixtures.temporaryDirectory("planes")
                defer { try? FileManager.default.removeItem(atPath: out) }
                let (plan, peak) = try Fixtures.merge(configText: text, into: out, limits: limits)
                XCTAssertEqual(peak, plan.schedule.predictedPeakBytes, "\(text), \(limits.threads) threads")
                let planes = plan.schedule.groups.flatMap(\.phases).map(\.wholePlanes).max() ?? 0
                if limits.retainAcrossPasses {
                    XCTAssertGreaterThan(planes, 0, "\(text): some value kept whole as a plane")
                } else {
                    XCTAssertEqual(planes, 0, text)
                }
                outputs.append(try files(out))
            }
            for (i, other) in outputs.enumerated().dropFirst() {
                XCTAssertEqual(Set(other.keys), Set(outputs[0].keys), "\(text) run \(i)")
                for (path, data) in outputs[0] { XCTAssertTrue(other[path] == data, "\(text): \(path) differs in run \(i)") }
            }
        }
    }

    /// The budget sets the chunk size: the predicted peak stays within it, and the executor within that.
    func testBudgetBoundsThePredictionAndTheRun() throws {
        // Selection histograms grow with the threads: the smallest budget is that of the threads the run uses.
        let unbounded = try Fixtures.compile(try String(contentsOfFile: "\(Fixtures.conformance)/cases/ties/config.yml",
                                                        encoding: .utf8),
                                             options: PlannerOptions(limits: Scheduler.Limits(threads: 2)))
        let smallest = unbounded.schedule.groups.map { $0.bytes(rows: 1) }.max()!
        for budget in [smallest, smallest + 3000, 4 * smallest] {
            let out = Fixtures.temporaryDirectory("budget")
            defer { try? FileManager.default.removeItem(atPath: out) }
            let (plan, peak) = try Fixtures.merge(case: "ties", into: out,
                                                  limits: Scheduler.Limits(budgetBytes: budget, threads: 2))
            XCTAssertLessThanOrEqual(plan.schedule.predictedPeakBytes, budget)
            XCTAssertEqual(peak, plan.schedule.predictedPeakBytes, "the kernels hold what they declare")
            XCTAssertTrue(plan.dump().contains("// memory: budget \(formatBytes(budget)); predicted peak "))
        }
    }

    /// One byte less than the smallest workable budget is an error that names it, and so is a far smaller budget; the
    /// budget itself works.
    func testTooSmallABudgetNamesTheSmallestWorkableOne() throws {
        let text = try String(contentsOfFile: "\(Fixtures.conformance)/cases/linear/config.yml", encoding: .utf8)
        let unbounded = try Fixtures.compile(text)
        let smallest = unbounded.schedule.groups.map { $0.bytes(rows: 1) }.max()!
        XCTAssertThrowsError(try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(budgetBytes: smallest - 1)))) {
            let message = "\($0)"
            XCTAssertTrue(message.contains("too small"), message)
            XCTAssertTrue(message.contains("the smallest workable budget is \(smallest) bytes"), message)
            // The whole-MiB figure it suggests is enough (a one-decimal MiB figure could round down below it).
            let mebibytes = (smallest + (1 << 20) - 1) >> 20
            XCTAssertTrue(message.contains("--max-memory \(mebibytes)MiB)"), message)
            XCTAssertGreaterThanOrEqual(mebibytes << 20, smallest)
            XCTAssertTrue(message.contains("tensor \""), message)
            // On the tiny fixture models most of it is the open shard's write buffers, which it says.
            let writers = unbounded.schedule.groups.map(\.writerBytes).max()!
            XCTAssertGreaterThan(writers, 0)
            XCTAssertTrue(message.contains("one row at a time (with \(formatByteCount(writers)) of write buffers for the "
                                           + "output shards open meanwhile)"), message)
        }
        // Far too small for every tensor: still the budget that every tensor fits in, not the first tensor's need.
        XCTAssertThrowsError(try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(budgetBytes: 1024)))) {
            XCTAssertTrue("\($0)".contains("the smallest workable budget is \(smallest) bytes"), "\($0)")
        }
        let plan = try Fixtures.compile(text, options: PlannerOptions(limits: Scheduler.Limits(budgetBytes: smallest)))
        XCTAssertLessThanOrEqual(plan.schedule.predictedPeakBytes, smallest)
    }

    /// With room for every group on a lane: which groups run on one (all but those `Scheduler.endsAlone` puts alone,
    /// a large last group such as `lm_head`).
    private func endsOnLanes(_ plan: Plan) -> [Bool] {
        let elements = plan.schedule.groups.map { group in
            group.steps.flatMap(\.writes).reduce(0) { $0 + plan.graph[plan.graph.outputs[$1].value].type.elementCount }
        }
        return Scheduler.endsAlone(elements: elements, lanes: plan.schedule.lanes).map { !$0 }
    }
}
