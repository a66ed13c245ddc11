import Foundation
import IR
@testable import Planner
import XCTest

/// Fitting each shape of group once (`FitMemo`) plans exactly what fitting every group anew plans.
final class FitMemoTests: XCTestCase {
    /// On every conformance and tokenizer case: on two lanes at the default budget, on two lanes at a budget just
    /// above the largest group's one-row need, on one thread without declining holds, and at half that need and at
    /// 4 MiB (where groups give up PyTorch's tie order, or the budget is too small: then the same error), the same
    /// schedule, graph (the tie orders given up included) and warnings.
    func testFittingEachShapeOncePlansWhatFittingEveryGroupPlans() throws {
        for (folder, name) in MemoryBudgetTests.cases {
            let text = try String(contentsOfFile: "\(folder)/\(Fixtures.caseConfig(name))", encoding: .utf8)
            func compile(_ limits: Scheduler.Limits) -> Result<Plan, Error> {
                Result { try Fixtures.compile(text, file: Fixtures.caseConfig(name), options: PlannerOptions(limits: limits),
                                              in: folder) }
            }
            let smallest = try compile(Scheduler.Limits(threads: 1)).get().schedule.groups.map { $0.bytes(rows: 1) }.max()!
            let cases = [Scheduler.Limits(threads: 2, lanes: 2),
                         Scheduler.Limits(budgetBytes: smallest + 5000, threads: 2, lanes: 2),
                         Scheduler.Limits(threads: 1, heldStepsPerPeakByte: 0),
                         Scheduler.Limits(budgetBytes: smallest / 2, threads: 2, lanes: 2),
                         Scheduler.Limits(budgetBytes: 4 << 20, threads: 2, lanes: 2)]
            for limits in cases {
                var anew = limits
                anew.fitsByShape = false
                switch (compile(limits), compile(anew)) {
                case (.success(let memo), .success(let every)):
                    XCTAssertEqual(memo.schedule, every.schedule, "\(name), budget \(limits.budgetBytes)")
                    XCTAssertEqual(memo.graph.nodes, every.graph.nodes, "\(name)")
                    XCTAssertEqual(memo.warnings, every.warnings, "\(name)")
                case (.failure(let memo), .failure(let every)):
                    XCTAssertEqual("\(memo)", "\(every)", "\(name)")
                case (let memo, let every):
                    XCTFail("\(name), budget \(limits.budgetBytes): \(memo) against \(every)")
                }
            }
        }
    }

    /// Two layers whose fp16 [1024, 512] projections tie by the thousands at a TIES cut, at one byte less than
    /// PyTorch's order needs: each layer's group gives that order up on one prune, the second layer's from the memo
    /// of the first (its prune's ID, not the first's), as fitting both anew does.
    func testAGroupFromTheMemoGivesUpWhatItsOwnFitWould() throws {
        let directory = Fixtures.temporaryDirectory("fit-memo")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try TieCutModels.write(in: directory, layers: 2,
                               tensors: (0..<2).map { ("model.layers.\($0).mlp.up_proj.weight", [1024, 512]) })
        func compile(_ limits: Scheduler.Limits) throws -> Plan { try TieCutModels.compile(in: directory, limits: limits) }
        let bare = try compile(Scheduler.Limits(threads: 2, retainAcrossPasses: false))
        let budget = bare.schedule.groups.map { $0.bytes(rows: 1) }.max()! - 1
        var anew = Scheduler.Limits(budgetBytes: budget, threads: 2)
        anew.fitsByShape = false
        let every = try compile(anew), memo = try compile(Scheduler.Limits(budgetBytes: budget, threads: 2))
        XCTAssertEqual(every.dump().components(separatedBy: "index ties").count - 1, 2, every.dump())
        XCTAssertEqual(memo.graph.nodes, every.graph.nodes)
        XCTAssertEqual(memo.schedule, every.schedule)
        XCTAssertEqual(memo.warnings, every.warnings)
    }
}
