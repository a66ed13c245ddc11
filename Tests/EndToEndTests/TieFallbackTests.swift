import Checkpoint
import Executor
import Foundation
import IR
import Parser
import Planner
import XCTest

/// PyTorch's order among equal magnitudes at the TIES cut holds the task vector whole (8 bytes per element for
/// these fp16 models); a budget too small for it
/// gives it up on as few `magnitude_prune` ops as it takes, says so once, and never exceeds the budget.
final class TieFallbackTests: XCTestCase {
    let caseName = "rw_ties_fp16_cut"

    /// With room for it, every prune keeps PyTorch's order and nothing is said.
    func testEnoughMemoryKeepsTorchTiesSilently() throws {
        let text = try String(contentsOfFile: "\(Fixtures.conformance)/\(Fixtures.caseConfig(caseName))", encoding: .utf8)
        let plan = try Fixtures.compile(text, file: Fixtures.caseConfig(caseName))
        XCTAssertTrue(plan.warnings.isEmpty, "\(plan.warnings)")
        XCTAssertTrue(plan.dump().contains("magnitude_prune(keep ranks 2048..<4096, torch ties)"))
        XCTAssertFalse(plan.dump().contains("index ties"))
    }

    /// A base and two fine-tunes with an fp16 [1024, 512] embedding whose task vectors take few distinct values (so
    /// thousands of elements tie at the cut) and a norm (`TieCutModels`); TIES at density 0.5.
    private func makeModels(in directory: String) throws {
        try TieCutModels.write(in: directory, layers: 1,
                               tensors: [("model.embed_tokens.weight", [1024, 512]), ("model.norm.weight", [512])])
    }

    private func compile(in directory: String, limits: Scheduler.Limits) throws -> Plan {
        try TieCutModels.compile(in: directory, limits: limits)
    }

    /// Runs `plan` into `directory`/`output`; returns the peak the executor held.
    private func run(_ plan: Plan, in directory: String, into output: String) throws -> Int {
        let previous = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(directory)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        let executor = PlanExecutor(plan: plan, catalog: LocalCheckpointCatalog(), options: ExecutionOptions(overwrite: true))
        try executor.run(outputDirectory: output)
        return executor.memory.peakBytes
    }

    /// One byte short of what PyTorch's order needs: one of the embedding's two prunes falls back to index order
    /// (the dump says so), one warning names the tensor and the bound on differing elements, the run holds exactly
    /// the predicted peak within the budget, the norm keeps its bytes, and the embedding differs from the exact run
    /// on some elements but no more than the warning's bound.
    func testTightBudgetFallsBackToIndexTiesWithOneWarning() throws {
        let directory = Fixtures.temporaryDirectory("tie-fallback")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try makeModels(in: directory)
        let exact = try compile(in: directory, limits: Scheduler.Limits(threads: 2))
        XCTAssertTrue(exact.warnings.isEmpty, "\(exact.warnings)")
        XCTAssertEqual(exact.dump().components(separatedBy: "torch ties").count - 1, 4, "two prunes per tensor")
        // What PyTorch's order needs: without what the planner grants only when it fits (operands kept whole or held
        // by their kernels, which the exact plan's prunes do).
        let bare = try compile(in: directory, limits: Scheduler.Limits(threads: 2, retainAcrossPasses: false))
        let needed = bare.schedule.groups.map { $0.bytes(rows: 1) }.max()!
        let budget = needed - 1
        let limits = Scheduler.Limits(budgetBytes: budget, threads: 2)
        let plan = try compile(in: directory, limits: limits)
        XCTAssertEqual(plan.warnings.count, 1)
        let warning = plan.warnings.first ?? ""
        let n = 1024 * 512
        XCTAssertEqual(warning, "warning: --max-memory \(formatByteCount(budget)) is too small to keep PyTorch's order among "
                       + "equal magnitudes at the TIES/breadcrumbs cut of 1 tensor(s) ('model.embed_tokens.weight'); 1 "
                       + "magnitude_prune op(s) keep equal magnitudes in index order instead, so their masks may differ "
                       + "from mergekit's in at most \(n) entries, summed over those ops (only where a magnitude equals "
                       + "the cut's); --max-memory "
                       + "\((needed + (1 << 20) - 1) / (1 << 20))MiB (at least \(needed) bytes) keeps PyTorch's order "
                       + "everywhere")
        // The budget the warning suggests is enough: no order given up.
        let suggested = (needed + (1 << 20) - 1) / (1 << 20) * (1 << 20)
        XCTAssertTrue(try compile(in: directory, limits: Scheduler.Limits(budgetBytes: suggested, threads: 2)).warnings.isEmpty)
        let dump = plan.dump()
        XCTAssertTrue(dump.contains("magnitude_prune(keep ranks \(n / 2)..<\(n), index ties)"), dump)
        XCTAssertTrue(dump.contains("magnitude_prune(keep ranks \(n / 2)..<\(n), torch ties)"), dump)
        XCTAssertLessThanOrEqual(plan.schedule.predictedPeakBytes, budget)
        // Far too small even for index order: the usual error, naming the smallest workable budget.
        XCTAssertThrowsError(try compile(in: directory, limits: Scheduler.Limits(budgetBytes: 1 << 20, threads: 2))) {
            XCTAssertTrue("\($0)".contains("the smallest workable budget is"), "\($0)")
        }

        let peakExact = try run(exact, in: directory, into: "exact")
        XCTAssertEqual(peakExact, exact.schedule.predictedPeakBytes)
        let peak = try run(plan, in: directory, into: "tight")
        XCTAssertEqual(peak, plan.schedule.predictedPeakBytes)
        XCTAssertLessThanOrEqual(peak, budget)
        let a = try CheckpointComparison.tensors(in: "\(directory)/exact")
        let b = try CheckpointComparison.tensors(in: "\(directory)/tight")
        func differing(_ tensor: String) -> Int {
            zip(a[tensor]?.1 ?? [], b[tensor]?.1 ?? [0]).filter { $0.bitPattern != $1.bitPattern }.count
        }
        XCTAssertEqual(differing("model.norm.weight"), 0)
        XCTAssertGreaterThan(differing("model.embed_tokens.weight"), 0, "fp16 ties at the cut: index order keeps others")
        XCTAssertLessThanOrEqual(differing("model.embed_tokens.weight"), n)
    }
}
