import XCTest
import IR
@testable import Planner

/// Step order, buffer lifetimes, shard assignment and the predicted peak of `Scheduler`.
final class SchedulerTests: PlannerTestCase {
    private func f32(_ n: Int) -> TensorType { TensorType(dtype: .f32, shape: [n]) }

    /// A graph whose outputs are plain loads of the given f32 element counts.
    private func loads(_ sizes: [Int]) -> Graph {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        for (i, n) in sizes.enumerated() {
            let v = g.add(.load(model: m, tensor: "t\(i)"), type: f32(n))
            g.addOutput(GraphOutput(name: "t\(i)", value: v))
        }
        return g
    }

    /// A base and three task vectors (`x_k − base`) of type `type`, from one model's loads.
    private func threeTaskVectors(_ g: inout Graph, type t: TensorType) -> (base: ValueID, vectors: [ValueID]) {
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let base = g.add(.load(model: m, tensor: "base"), type: t)
        let vectors = (0..<3).map { k in
            g.add(.sub, [g.add(.load(model: m, tensor: "x\(k)"), type: t), base], type: t)
        }
        return (base, vectors)
    }

    // MARK: steps

    func testSmallGraphSchedule() throws {
        var g = Graph()
        let a = g.addModel(ModelInput(name: "a", path: "/a"))
        let b = g.addModel(ModelInput(name: "b", path: "/b"))
        let x = g.add(.load(model: a, tensor: "x"), type: f32(10))
        let y = g.add(.load(model: b, tensor: "x"), type: f32(10))
        let mix = g.add(.weightedSum([0.5, 0.5]), [x, y], type: f32(10))
        let small = g.add(.load(model: a, tensor: "y"), type: TensorType(dtype: .f16, shape: [5]))
        let wide = g.cast(small, to: .f32)
        _ = g.add(.load(model: b, tensor: "unused"), type: f32(1000))
        g.addOutput(GraphOutput(name: "x", value: mix))
        g.addOutput(GraphOutput(name: "y", value: wide))
        let s = try Scheduler.schedule(g, maxShardBytes: 1000, costs: testCosts)
        XCTAssertEqual(s.steps, [
            ScheduleStep(value: x, writes: [], frees: []),
            ScheduleStep(value: y, writes: [], frees: []),
            ScheduleStep(value: mix, writes: [0], frees: [x, y, mix]),
            ScheduleStep(value: small, writes: [], frees: []),
            ScheduleStep(value: wide, writes: [1], frees: [small, wide]),
        ])
        // Two groups (the shapes differ): x, y and mix alive at once, then small and wide.
        XCTAssertEqual(s.groups.map(\.liveBuffers), [3, 2])
        XCTAssertEqual(s.groups[0].peakBytes, 10 * (3 * 4 + 4) + testCosts.bytesPerOpenShard,
                       "chunk buffers, one load's f32 staging and the open writer")
        XCTAssertEqual(s.predictedPeakBytes, s.groups[0].peakBytes)
        XCTAssertEqual(s.shards, [Shard(fileName: "model.safetensors", outputs: [0, 1], byteCount: 60)])
        assertValidSchedule(g, s)
    }

    func testValueUsedByLaterOutputStaysLive() throws {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let base = g.add(.load(model: m, tensor: "base"), type: f32(10))
        let p = g.add(.load(model: m, tensor: "p"), type: f32(10))
        let q = g.add(.load(model: m, tensor: "q"), type: f32(10))
        let bp = g.add(.add, [base, p], type: f32(10))
        let bq = g.add(.add, [base, q], type: f32(10))
        g.addOutput(GraphOutput(name: "p", value: bp))
        g.addOutput(GraphOutput(name: "q", value: bq))
        let s = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts)
        XCTAssertEqual(s.steps, [
            ScheduleStep(value: base, writes: [], frees: []),
            ScheduleStep(value: p, writes: [], frees: []),
            ScheduleStep(value: bp, writes: [0], frees: [p, bp]),
            ScheduleStep(value: q, writes: [], frees: []),
            ScheduleStep(value: bq, writes: [1], frees: [base, q, bq]),
        ])
        // One group (base is shared); live buffers 1, 2, 3 → 1 (base), 2, 3.
        XCTAssertEqual(s.groups.count, 1)
        XCTAssertEqual(s.groups[0].liveBuffers, 3)
        assertValidSchedule(g, s)
    }

    func testOutputsSharingAValue() throws {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32(4))
        let y = g.add(.load(model: m, tensor: "y"), type: f32(4))
        let sum = g.add(.add, [x, y], type: f32(4))
        g.addOutput(GraphOutput(name: "emb", value: x))
        g.addOutput(GraphOutput(name: "sum", value: sum))
        g.addOutput(GraphOutput(name: "head", value: x))
        let s = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts)
        assertValidSchedule(g, s)
        XCTAssertEqual(s.groups.count, 1, "the outputs share x, so they run together")
        XCTAssertEqual(s.steps.count, 3, "x is computed once")
        XCTAssertEqual(s.steps[0].writes, [0, 2], "both outputs of x are written as soon as x is computed")
        XCTAssertEqual(s.steps[2].writes, [1])
        let freeOfX = s.steps.firstIndex { $0.frees.contains(x) }
        XCTAssertEqual(freeOfX, 2, "x lives until sum, its last use")
        XCTAssertEqual(s.groups.map(\.liveBuffers), [3])
    }

    func testDiamondComputesSharedOperandOnce() throws {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32(3))
        let s1 = g.add(.scale(2), [x], type: f32(3))
        let s2 = g.add(.scale(3), [x], type: f32(3))
        let top = g.add(.add, [s1, s2], type: f32(3))
        g.addOutput(GraphOutput(name: "top", value: top))
        let s = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts)
        XCTAssertEqual(s.steps.map(\.value), [x, s1, s2, top])
        XCTAssertEqual(s.steps[2].frees, [x], "s2 is still needed by top")
        XCTAssertEqual(s.steps[3].frees, [s1, s2, top])
        assertValidSchedule(g, s)
        // Live: x; x, s1; x, s1, s2 (x freed after s2); s1, s2, top.
        XCTAssertEqual(s.groups[0].liveBuffers, 3)
    }

    /// The operand that needs more buffers is computed first, so the cheap one does not wait alive meanwhile.
    func testHeavierOperandGoesFirst() throws {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let a = g.add(.load(model: m, tensor: "a"), type: f32(8))
        let b = g.add(.load(model: m, tensor: "b"), type: f32(8))
        let c = g.add(.load(model: m, tensor: "c"), type: f32(8))
        let d = g.add(.load(model: m, tensor: "d"), type: f32(8))
        let bc = g.add(.add, [b, c], type: f32(8))
        let bcd = g.add(.add, [bc, d], type: f32(8))
        let top = g.add(.sub, [a, bcd], type: f32(8))
        g.addOutput(GraphOutput(name: "top", value: top))
        let s = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts)
        XCTAssertEqual(s.steps.map(\.value), [b, c, bc, d, bcd, a, top])
        // In operand order (a first) four buffers would be alive when bc is computed.
        XCTAssertEqual(s.groups[0].liveBuffers, 3)
        assertValidSchedule(g, s)
    }

    /// An operand of a statistics pass that itself needs passes is kept whole when the budget allows, else
    /// recomputed; operands computed without passes are recomputed unless that costs many recomputed steps.
    func testOperandsNeedingPassesAreKeptWholeWhenTheBudgetAllows() throws {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let t = TensorType(dtype: .f32, shape: [100, 10])
        let x = g.add(.load(model: m, tensor: "x"), type: t)
        let y = g.add(.load(model: m, tensor: "y"), type: t)
        let d = g.add(.sub, [x, y], type: t)
        let pruned = g.add(.magnitudePrune(keep: 500..<1000, rescale: false, ties: .index), [d], type: t)
        let s = g.add(.slerp(t: 0.5), [x, pruned], type: t)
        g.addOutput(GraphOutput(name: "s", value: s))
        let roomy = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts)
        // d would be computed in both of the prune's passes and the slerp's (2 recomputations of 3 steps): kept
        // too; x, read in every sweep, is read again.
        XCTAssertEqual(roomy.groups[0].retained, [d, pruned], "x is read again rather than kept")
        XCTAssertGreaterThanOrEqual(roomy.groups[0].peakBytes, 2 * 1000 * 4, "the kept values are counted")
        XCTAssertTrue(Printer(graph: g, schedule: roomy).render().contains("kept whole across passes: %2 %3;"))
        // Just enough for one row without keeping anything.
        let bare = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts,
                                          limits: Scheduler.Limits(retainAcrossPasses: false)).groups[0]
        let tight = try Scheduler.schedule(
            g, maxShardBytes: 0, costs: testCosts, limits: Scheduler.Limits(budgetBytes: bare.bytes(rows: 1)))
        XCTAssertEqual(tight.groups[0].retained, [])
        XCTAssertEqual(tight.groups[0].chunkRows, 1)
        let off = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts, limits: Scheduler.Limits(retainAcrossPasses: false))
        XCTAssertEqual(off.groups[0].retained, [])
    }

    /// Operands that the sweeps would recompute many times over (counted in steps: multislerp's four passes and
    /// the output sweep over task vectors of three steps each) are kept whole when the budget allows; inputs read
    /// three times (a two-pass kernel over loads) are read again.
    func testOperandsRecomputedOftenAreKeptWholeWhenTheBudgetAllows() throws {
        struct FourPasses: CostModel {
            let bytesPerOpenShard = 0
            func cost(of op: Op, result: TensorType, operands: [TensorType], threads: Int) -> KernelCost {
                switch op {
                case .multislerp: return KernelCost(passBytes: [100, 100, 100, 100])
                case .slerp: return KernelCost(passBytes: [100, 100])
                default: return testCosts.cost(of: op, result: result, operands: operands, threads: threads)
                }
            }
        }
        var g = Graph()
        let t = TensorType(dtype: .bf16, shape: [100, 10])
        let (base, vectors) = threeTaskVectors(&g, type: t)
        let merged = g.add(.multislerp(weights: [0.5, 0.25, 0.25], eps: 1e-8), vectors, type: t)
        let out = g.add(.add, [base, merged], type: t)
        g.addOutput(GraphOutput(name: "merged", value: out))
        let roomy = try Scheduler.schedule(g, maxShardBytes: 0, costs: FourPasses())
        XCTAssertEqual(roomy.groups[0].retained, vectors)
        XCTAssertEqual(roomy.groups[0].sweeps.count, 5)
        // The later sweeps read the kept task vectors and compute nothing; the output sweep reads the base once more.
        XCTAssertEqual(roomy.groups[0].sweeps[1].computes.map { roomy.groups[0].steps[$0].value }.sorted(),
                       vectors.sorted())
        assertValidSchedule(g, roomy)
        let bare = try Scheduler.schedule(g, maxShardBytes: 0, costs: FourPasses(),
                                          limits: Scheduler.Limits(retainAcrossPasses: false)).groups[0]
        let tight = try Scheduler.schedule(g, maxShardBytes: 0, costs: FourPasses(),
                                           limits: Scheduler.Limits(budgetBytes: bare.bytes(rows: 1)))
        XCTAssertEqual(tight.groups[0].retained, [])

        var h = Graph()
        let n = h.addModel(ModelInput(name: "a", path: "/a"))
        let a = h.add(.load(model: n, tensor: "a"), type: t), b = h.add(.load(model: n, tensor: "b"), type: t)
        h.addOutput(GraphOutput(name: "s", value: h.add(.slerp(t: 0.5), [a, b], type: t)))
        XCTAssertEqual(try Scheduler.schedule(h, maxShardBytes: 0, costs: FourPasses()).groups[0].retained, [],
                       "inputs read three times are read again")
    }

    /// SCE's weights pass reads its masked task vectors and the elected signs. The masked task vectors (computed
    /// through the variance selection's passes) would be kept whole; the task vectors they are one step from (with
    /// the mask, computed in one step from the kept variance) are kept in their place, at as many bytes an element,
    /// so that no sweep after the first loads a fine-tune again. The signs, one step from kept values, are computed
    /// again in the output sweep rather than kept (4 bytes an element less), and still come from the same operands.
    func testAValueOneStepFromKeptOnesIsComputedAgain() throws {
        var g = Graph()
        let t = TensorType(dtype: .bf16, shape: [100, 10])
        let (base, vectors) = threeTaskVectors(&g, type: t)
        let variance = g.add(.variance, vectors, type: TensorType(dtype: .f32, shape: [100, 10]))
        let mask = g.add(.varianceTopK(fraction: 0.1), [variance], type: t)
        let masked = vectors.map { g.add(.mul, [$0, mask], type: t) }
        let signs = g.add(.signElect(weights: [1, 1, 1]), masked, type: t)
        let merged = g.add(.sceMerge, [signs] + masked, type: t)
        g.addOutput(GraphOutput(name: "merged", value: g.add(.add, [base, merged], type: t)))
        let group = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts).groups[0]
        XCTAssertEqual(group.retained, (vectors + [variance]).sorted())
        XCTAssertFalse(group.retained.contains(signs), "\(group.retained)")
        let output = try XCTUnwrap(group.sweeps.last)
        XCTAssertTrue(output.computes.map { group.steps[$0].value }.contains(signs), "the output sweep computes the signs")
        XCTAssertTrue(masked.allSatisfy(output.computes.map { group.steps[$0].value }.contains),
                      "the output sweep computes the masked task vectors from the kept ones")
        let fineTunes = vectors.map { g[$0].operands[0] }
        for (s, sweep) in group.sweeps.enumerated() {
            let loads = sweep.computes.map { group.steps[$0].value }.filter(fineTunes.contains)
            XCTAssertEqual(loads.count, s == 0 ? 3 : 0, "sweep \(s) loads \(loads)")
        }
        assertValidSchedule(g, try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts))

        // No swap where the kept value one step from a task vector takes fewer bytes an element (an f32 task vector
        // kept as a 4-byte value in place of a bf16 plane): the masked ones stay kept.
        var h = Graph()
        let w = TensorType(dtype: .f32, shape: [100, 10])
        let (hBase, wide) = threeTaskVectors(&h, type: w)
        let hVariance = h.add(.variance, wide, type: w)
        let hMask = h.add(.varianceTopK(fraction: 0.1), [hVariance], type: t)
        let hMasked = wide.map { h.add(.mul, [$0, hMask], type: t) }
        let hMerged = h.add(.sceMerge, [h.add(.signElect(weights: [1, 1, 1]), hMasked, type: t)] + hMasked, type: t)
        h.addOutput(GraphOutput(name: "merged", value: h.add(.add, [hBase, hMerged], type: t)))
        let kept = try Scheduler.schedule(h, maxShardBytes: 0, costs: testCosts).groups[0].retained
        XCTAssertTrue(hMasked.allSatisfy(kept.contains), "\(kept)")
        XCTAssertFalse(wide.contains(where: kept.contains), "\(kept)")
    }

    /// Multislerp's declared cost with its offer to hold its operands (four 2-byte planes) after its first pass.
    private struct Holding: CostModel {
        let bytesPerOpenShard = 0
        func cost(of op: Op, result: TensorType, operands: [TensorType], threads: Int) -> KernelCost {
            guard case .multislerp = op else {
                return testCosts.cost(of: op, result: result, operands: operands, threads: threads)
            }
            let planes = 4 * result.elementCount * 2
            return KernelCost(passBytes: [0, 100, 100, 100], holding: OperandHolding(
                operandPasses: 1, passBytes: [planes, planes + 100, planes + 100, planes + 100], sweepBytes: planes))
        }
    }

    /// Three prunes whose kernels take `finish` bytes only while they finish their one pass (a deferred TIES cut's
    /// sort entries, `KernelCost.finishBytes`).
    private struct Finishing: CostModel {
        let bytesPerOpenShard = 0
        let finish: [Int]
        func cost(of op: Op, result: TensorType, operands: [TensorType], threads: Int) -> KernelCost {
            guard case .magnitudePrune(let keep, _, _) = op else {
                return testCosts.cost(of: op, result: result, operands: operands, threads: threads)
            }
            return KernelCost(passBytes: [10], sweepBytes: 10, finishBytes: [finish[keep.lowerBound]])
        }
    }

    /// A sweep's state counts what its observers hold while they finish, for as many of them at once as the group
    /// has threads: the largest ones (one thread: the largest alone; two: the two largest; more: all); a group
    /// planned on a lane finishes one at a time (`ChunkGroup.finishingThreads`).
    func testFinishingBytesCountTheLargestAsManyAsThreads() throws {
        XCTAssertEqual(KernelCost.finishingBytes([100, 700, 50], threads: 1), 700)
        XCTAssertEqual(KernelCost.finishingBytes([100, 700, 50], threads: 2), 800)
        XCTAssertEqual(KernelCost.finishingBytes([100, 700, 50], threads: 8), 850)
        XCTAssertEqual(KernelCost.finishingBytes([], threads: 2), 0)
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let t = TensorType(dtype: .bf16, shape: [100, 10])
        let base = g.add(.load(model: m, tensor: "base"), type: t)
        let prunes = (0..<3).map { k in
            g.add(.magnitudePrune(keep: k..<1000, rescale: false, ties: .torchDescending),
                  [g.add(.sub, [g.add(.load(model: m, tensor: "x\(k)"), type: t), base], type: t)], type: t)
        }
        g.addOutput(GraphOutput(name: "m", value: g.add(.add, [prunes[0], g.add(.add, [prunes[1], prunes[2]], type: t)], type: t)))
        let costs = Finishing(finish: [100_000, 700_000, 50_000])
        for (threads, finishing) in [(1, 700_000), (2, 800_000), (4, 850_000)] {
            let group = try Scheduler.schedule(g, maxShardBytes: 0, costs: costs,
                                               limits: Scheduler.Limits(threads: threads)).groups[0]
            XCTAssertEqual(group.phases.count, 2)
            XCTAssertEqual(group.phases[0].stateBytes, 30 + finishing, "\(threads) thread(s)")
            XCTAssertEqual(group.phases[1].stateBytes, 30, "nothing finishes in the output sweep")
            XCTAssertEqual(group.finishingThreads, 0)
        }
        // Planned on a lane (here run with its lane's plan alone, the last group), one kernel finishes at a time.
        let laned = try Scheduler.schedule(g, maxShardBytes: 0, costs: costs,
                                           limits: Scheduler.Limits(threads: 2, lanes: 2)).groups[0]
        XCTAssertEqual(laned.finishingThreads, 1)
        XCTAssertEqual(laned.phases[0].stateBytes, 30 + 700_000)
    }

    /// Limits granting holding wherever a group fits (no amortization asked).
    private let granting = Scheduler.Limits(heldStepsPerPeakByte: 0)

    /// A kernel that offers to hold its operands (multislerp's planes) is granted it when the group fits with
    /// chunks as large as without: its operands are then computed in its first pass only, so nothing is kept whole,
    /// and the later sweeps compute nothing for it. Without room it reads its operands as before.
    func testAKernelHoldsItsOperandsWhenTheBudgetAllows() throws {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let t = TensorType(dtype: .bf16, shape: [100, 10])
        let base = g.add(.load(model: m, tensor: "base"), type: t)
        let loads = (0..<3).map { k in g.add(.load(model: m, tensor: "x\(k)"), type: t) }
        let vectors = loads.map { g.add(.sub, [$0, base], type: t) }
        let merged = g.add(.multislerp(weights: [0.5, 0.25, 0.25], eps: 1e-8), vectors, type: t)
        let out = g.add(.add, [base, merged], type: t)
        g.addOutput(GraphOutput(name: "merged", value: out))
        let roomy = try Scheduler.schedule(g, maxShardBytes: 0, costs: Holding(), limits: granting).groups[0]
        XCTAssertEqual(roomy.holding, [merged])
        XCTAssertEqual(roomy.retained, [], "the task vectors are computed once")
        XCTAssertEqual(roomy.sweeps.count, 5)
        func computed(_ sweep: Int) -> [ValueID] { roomy.sweeps[sweep].computes.map { roomy.steps[$0].value }.sorted() }
        XCTAssertEqual(computed(0), ([base] + loads + vectors).sorted())
        for sweep in 1...3 { XCTAssertEqual(computed(sweep), [], "sweep \(sweep)") }
        XCTAssertEqual(computed(4), [base, merged, out].sorted(), "the output sweep reads the base only")
        XCTAssertGreaterThanOrEqual(roomy.peakBytes, 8000, "the planes are counted")
        let schedule = try Scheduler.schedule(g, maxShardBytes: 0, costs: Holding(), limits: granting)
        assertValidSchedule(g, schedule)
        XCTAssertTrue(Printer(graph: g, schedule: schedule).render().contains("holding their operands: \(merged);"))

        let bare = try Scheduler.schedule(g, maxShardBytes: 0, costs: Holding(),
                                          limits: Scheduler.Limits(retainAcrossPasses: false)).groups[0]
        XCTAssertEqual(bare.holding, [])
        XCTAssertEqual(bare.sweeps[2].computes.count, 7, "without holding every pass recomputes the task vectors")
        let tight = try Scheduler.schedule(g, maxShardBytes: 0, costs: Holding(),
                                           limits: Scheduler.Limits(budgetBytes: bare.bytes(rows: bare.chunkRows) + 7999))
            .groups[0]
        XCTAssertEqual(tight.holding, [], "the planes do not fit beside chunks as large as without them")
        XCTAssertEqual(tight.chunkRows, bare.chunkRows)

        // An operand that takes passes itself (a prune's result) is kept whole for a kernel that reads it in every
        // pass, but not for one holding it after its first pass, which reads it once.
        var h = Graph()
        let n = h.addModel(ModelInput(name: "a", path: "/a"))
        let hb = h.add(.load(model: n, tensor: "base"), type: t)
        let hx = (0..<3).map { k in h.add(.sub, [h.add(.load(model: n, tensor: "x\(k)"), type: t), hb], type: t) }
        let pruned = h.add(.magnitudePrune(keep: 500..<1000, rescale: false, ties: .index), [hx[0]], type: t)
        let hm = h.add(.multislerp(weights: [0.5, 0.25, 0.25], eps: 1e-8), [pruned, hx[1], hx[2]], type: t)
        h.addOutput(GraphOutput(name: "m", value: h.add(.add, [hb, hm], type: t)))
        let held = try Scheduler.schedule(h, maxShardBytes: 0, costs: Holding(), limits: granting).groups[0]
        XCTAssertEqual(held.holding, [hm])
        XCTAssertFalse(held.retained.contains(pruned), "kept whole for a kernel that reads it once")
        let reading = try Scheduler.schedule(h, maxShardBytes: 0, costs: testCosts).groups[0]
        XCTAssertTrue(reading.retained.contains(pruned), "kept whole for a kernel that reads it in every pass")
    }

    /// Holding is granted where the recomputation it saves pays for the memory it adds to the run: eight small
    /// tensors of one shape share one peak and each saves its three sweeps, so they hold; one tensor 64 times their
    /// size would add 128 KB (over keeping its task vectors whole instead, as bf16 planes) for 768 K element-steps
    /// (6 per byte), so it holds only when asked for less than that per byte, alone or on a lane. What is declined is planned as if
    /// the kernel had not offered to hold, and the bytes it would add are not touched.
    func testHoldingIsDeclinedWhereItDoesNotPayForTheMemoryItAdds() throws {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        var merges: [ValueID] = []
        for (i, shape) in ([[640, 100]] + Array(repeating: [100, 10], count: 8)).enumerated() {
            let t = TensorType(dtype: .bf16, shape: shape)
            let base = g.add(.load(model: m, tensor: "base\(i)"), type: t)
            let vectors = (0..<3).map { k in g.add(.sub, [g.add(.load(model: m, tensor: "x\(i).\(k)"), type: t), base], type: t) }
            merges.append(g.add(.multislerp(weights: [0.5, 0.25, 0.25], eps: 1e-8), vectors, type: t))
            g.addOutput(GraphOutput(name: "t\(i)", value: g.add(.add, [base, merges[i]], type: t)))
        }
        func plan(_ stepsPerByte: Int) throws -> Schedule {
            let s = try Scheduler.schedule(g, maxShardBytes: 0, costs: Holding(),
                                           limits: Scheduler.Limits(heldStepsPerPeakByte: stepsPerByte))
            assertValidSchedule(g, s)
            return s
        }
        let byDefault = try plan(Scheduler.defaultHeldStepsPerPeakByte), everywhere = try plan(0), cheap = try plan(2)
        XCTAssertEqual(everywhere.groups.map(\.holding), merges.map { [$0] })
        XCTAssertEqual(cheap.groups.map(\.holding), merges.map { [$0] })
        XCTAssertEqual(byDefault.groups[0].holding, [], "the large tensor's planes would not pay for themselves")
        XCTAssertEqual(byDefault.groups.dropFirst().map(\.holding), merges.dropFirst().map { [$0] })
        /// The same kernels without the offer to hold.
        struct NotHolding: CostModel {
            let bytesPerOpenShard = 0
            func cost(of op: Op, result: TensorType, operands: [TensorType], threads: Int) -> KernelCost {
                var cost = Holding().cost(of: op, result: result, operands: operands, threads: threads)
                cost.holding = nil
                return cost
            }
        }
        let unheld = try Scheduler.schedule(g, maxShardBytes: 0, costs: NotHolding())
        XCTAssertEqual(byDefault.groups[0], unheld.groups[0], "planned as if the kernel had not offered to hold")
        XCTAssertEqual(byDefault.predictedPeakBytes, unheld.predictedPeakBytes)
        XCTAssertLessThan(byDefault.predictedPeakBytes, everywhere.predictedPeakBytes)
        let declined = try XCTUnwrap(byDefault.declinedHolding)
        XCTAssertEqual(declined.groups, [0])
        XCTAssertEqual(declined.addedBytes, everywhere.predictedPeakBytes - byDefault.predictedPeakBytes)
        XCTAssertLessThan(declined.savedElementSteps, Scheduler.defaultHeldStepsPerPeakByte * declined.addedBytes)
        XCTAssertGreaterThan(declined.savedElementSteps, 4 * declined.addedBytes)
        XCTAssertNil(everywhere.declinedHolding)
        XCTAssertNil(cheap.declinedHolding)
        XCTAssertTrue(Printer(graph: g, schedule: byDefault).render().contains(
            "// holding declined on 1 tensor group(s) ('t0'): it would add "))
        // On lanes (the whole budget is room for every group on a lane, holding): the same decisions.
        let laned = try Scheduler.schedule(g, maxShardBytes: 0, costs: Holding(), limits: Scheduler.Limits(threads: 2, lanes: 2))
        assertValidSchedule(g, laned)
        XCTAssertEqual(laned.groups.map(\.concurrent), [false] + Array(repeating: true, count: 8),
                       "the large tensor, followed by an eighth of its size, alone on its lane's plan")
        XCTAssertEqual(laned.groups.map(\.holding), [[]] + merges.dropFirst().map { [$0] })
        XCTAssertEqual(laned.declinedHolding?.groups, [0])
        // Alone, the large tensor's planes pay for nothing else: declined; one small tensor alone is declined too.
        var one = Graph()
        let n = one.addModel(ModelInput(name: "a", path: "/a"))
        let t = TensorType(dtype: .bf16, shape: [640, 100])
        let base = one.add(.load(model: n, tensor: "base"), type: t)
        let vectors = (0..<3).map { k in one.add(.sub, [one.add(.load(model: n, tensor: "x\(k)"), type: t), base], type: t) }
        one.addOutput(GraphOutput(name: "t", value: one.add(.add, [base, one.add(
            .multislerp(weights: [0.5, 0.25, 0.25], eps: 1e-8), vectors, type: t)], type: t)))
        XCTAssertEqual(try Scheduler.schedule(one, maxShardBytes: 0, costs: Holding()).groups[0].holding, [])
    }

    /// A last group much larger than the rest (`lm_head` after the layers) runs alone on all threads with the plan
    /// it has on a lane (no more memory); one as large as a group it may run beside, or followed by a quarter of its
    /// size or more, stays on a lane.
    func testALargeLastGroupRunsAloneWithItsLanePlan() throws {
        func graph(_ shapes: [[Int]]) -> Graph {
            var g = Graph()
            let m = g.addModel(ModelInput(name: "a", path: "/a"))
            for (i, shape) in shapes.enumerated() {
                let t = TensorType(dtype: .f32, shape: shape)
                let sum = g.add(.add, [g.add(.load(model: m, tensor: "x\(i)"), type: t),
                                       g.add(.load(model: m, tensor: "y\(i)"), type: t)], type: t)
                g.addOutput(GraphOutput(name: "t\(i)", value: sum))
            }
            return g
        }
        /// `testCosts` without the shard writers' buffers.
        struct NoWriters: CostModel {
            let bytesPerOpenShard = 0
            func cost(of op: Op, result: TensorType, operands: [TensorType], threads: Int) -> KernelCost {
                testCosts.cost(of: op, result: result, operands: operands, threads: threads)
            }
        }
        let budget = 256 << 10, costs = NoWriters()
        let limits = Scheduler.Limits(budgetBytes: budget, threads: 2, lanes: 2)
        let small = Array(repeating: [100, 10], count: 6)
        let g = graph(small + [[1000, 10], [10]])
        let s = try Scheduler.schedule(g, maxShardBytes: 0, costs: costs, limits: limits)
        assertValidSchedule(g, s)
        XCTAssertEqual(s.groups.map(\.concurrent), Array(repeating: true, count: 6) + [false, true])
        XCTAssertLessThanOrEqual(s.groups[6].peakBytes, budget / 2 - s.groups[6].outputBytes, "the lane's plan")
        let alone = try Scheduler.schedule(g, maxShardBytes: 0, costs: costs,
                                           limits: Scheduler.Limits(budgetBytes: budget, threads: 2))
        XCTAssertGreaterThan(alone.groups[6].chunkRows, s.groups[6].chunkRows, "alone it would take larger chunks")
        // Beside a group half its size, or followed by a quarter of its size: on a lane.
        for shapes in [small + [[500, 10], [1000, 10], [10]], small + [[1000, 10], [250, 10]]] {
            let h = graph(shapes)
            XCTAssertTrue(try Scheduler.schedule(h, maxShardBytes: 0, costs: costs, limits: limits).groups
                .allSatisfy(\.concurrent), "\(shapes.suffix(3))")
        }
    }

    func testBuffersAreF32WhateverTheDType() throws {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let h = g.add(.load(model: m, tensor: "h"), type: TensorType(dtype: .bf16, shape: [8]))
        g.addOutput(GraphOutput(name: "h", value: h))
        let s = try Scheduler.schedule(g, maxShardBytes: 0, costs: testCosts)
        XCTAssertEqual(s.groups[0].peakBytes, 8 * 4 + 8 * 2 + testCosts.bytesPerOpenShard,
                       "an f32 chunk buffer plus the bf16 staging it is read from, and the writer")
        XCTAssertEqual(s.shards.first?.byteCount, 16, "shards hold the stored dtype")
    }

    func testEmptyGraph() throws {
        let s = try Scheduler.schedule(Graph(), maxShardBytes: 100, costs: testCosts)
        XCTAssertEqual(s.steps, [])
        XCTAssertEqual(s.predictedPeakBytes, 0)
    }

    // MARK: shards

    func testShardSplitLikeMergekit() throws {
        // 40 + 40 fit in 100; 100 would pass it; 30 + 30 fit.
        let g = loads([10, 10, 25, 8, 7])
        let shards = Scheduler.assignShards(g, maxShardBytes: 100)
        XCTAssertEqual(shards, [
            Shard(fileName: "model-00001-of-00003.safetensors", outputs: [0, 1], byteCount: 80),
            Shard(fileName: "model-00002-of-00003.safetensors", outputs: [2], byteCount: 100),
            Shard(fileName: "model-00003-of-00003.safetensors", outputs: [3, 4], byteCount: 60),
        ])
    }

    func testExactFitStaysInShard() throws {
        let g = loads([15, 10, 1])
        let shards = Scheduler.assignShards(g, maxShardBytes: 100)
        XCTAssertEqual(shards.map(\.outputs), [[0, 1], [2]])
        XCTAssertEqual(shards.map(\.byteCount), [100, 4])
    }

    func testTensorLargerThanLimitGetsItsOwnShard() throws {
        let g = loads([10, 50, 10])
        let shards = Scheduler.assignShards(g, maxShardBytes: 100)
        XCTAssertEqual(shards.map(\.outputs), [[0], [1], [2]])
        XCTAssertEqual(shards.map(\.byteCount), [40, 200, 40])
        XCTAssertEqual(shards.map(\.fileName), ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                                "model-00003-of-00003.safetensors"])
        let first = Scheduler.assignShards(loads([50, 1]), maxShardBytes: 100)
        XCTAssertEqual(first.map(\.outputs), [[0], [1]], "an oversized first tensor is alone too")
    }

    func testSingleShardIsModelSafetensors() throws {
        let shards = Scheduler.assignShards(loads([10, 10]), maxShardBytes: 1000)
        XCTAssertEqual(shards, [Shard(fileName: "model.safetensors", outputs: [0, 1], byteCount: 80)])
    }

    func testZeroLimitMeansOneShard() throws {
        XCTAssertEqual(Scheduler.assignShards(loads([10, 50, 10]), maxShardBytes: 0).map(\.outputs), [[0, 1, 2]])
    }

    func testTenOrMoreShardsArePaddedToFiveDigits() throws {
        let shards = Scheduler.assignShards(loads(Array(repeating: 25, count: 12)), maxShardBytes: 100)
        XCTAssertEqual(shards.count, 12)
        XCTAssertEqual(shards[0].fileName, "model-00001-of-00012.safetensors")
        XCTAssertEqual(shards[11].fileName, "model-00012-of-00012.safetensors")
    }

    func testStepsFollowShardOrder() throws {
        let s = try Scheduler.schedule(loads([10, 10, 25, 8, 7]), maxShardBytes: 100, costs: testCosts)
        XCTAssertEqual(s.steps.flatMap(\.writes), [0, 1, 2, 3, 4])
        XCTAssertEqual(s.shardOfOutput, [0: 1, 1: 1, 2: 2, 3: 3, 4: 3])
    }

    // MARK: compiled plans

    func testCompiledPlanShardsAndSchedule() throws {
        fx.add("A", FakeModel(layers: 1))
        // Sizes: embed 128, q_proj 64, up_proj 128, layernorm 16, norm 16, lm_head 128.
        let plan = try fx.compile("merge_method: passthrough\nmodels:\n  - model: $A\n", shardSize: 200)
        XCTAssertEqual(plan.schedule.shards, [
            Shard(fileName: "model-00001-of-00003.safetensors", outputs: [0, 1], byteCount: 192),
            Shard(fileName: "model-00002-of-00003.safetensors", outputs: [2, 3, 4], byteCount: 160),
            Shard(fileName: "model-00003-of-00003.safetensors", outputs: [5], byteCount: 128),
        ])
        assertValidSchedule(plan.graph, plan.schedule)
        // Each load is written and freed at once: one buffer per group; the peak is the largest tensor's group
        // plus the writers' buffers (one writer open at a time).
        XCTAssertEqual(plan.schedule.groups.map(\.liveBuffers), [1, 1, 1, 1, 1, 1])
        XCTAssertEqual(plan.schedule.groups.map(\.writerBytes), Array(repeating: testCosts.bytesPerOpenShard, count: 6))
        XCTAssertEqual(plan.schedule.groups.map(\.opensShards), [[0], [], [1], [], [], [2]])
        XCTAssertEqual(plan.schedule.groups.map(\.closesShards), [[], [0], [], [], [1], [2]])
        XCTAssertEqual(plan.schedule.predictedPeakBytes, plan.schedule.groups.map(\.peakBytes).max()!)
        let dump = plan.dump()
        XCTAssertTrue(dump.contains("out \"lm_head.weight\" shard 3 = %5"), dump)
        XCTAssertTrue(dump.contains("// summary: 6 nodes; 6 loads requested, 6 unique; 480 B to read"), dump)
    }

    func testCompiledMergeScheduleIsValid() throws {
        fx.add("A", FakeModel(layers: 3))
        fx.add("B", FakeModel(layers: 3))
        fx.add("C", FakeModel(layers: 3))
        let plan = try fx.compile("""
            merge_method: task_arithmetic
            base_model: $A
            dtype: bfloat16
            out_dtype: float16
            models:
              - model: $B
                parameters: {weight: 0.5}
              - model: $C
                parameters: {weight: 0.5}
            """, shardSize: 300)
        assertValidSchedule(plan.graph, plan.schedule)
        XCTAssertGreaterThan(plan.schedule.shards.count, 1)
        XCTAssertEqual(plan.schedule.steps.count, plan.graph.nodes.count, "every node is needed")
        // Each tensor's merge needs 3 loads, 3 casts, 2 subs, a weighted sum, an add and a cast alive at
        // some point; the peak is that of the largest tensor's computation, never the whole model.
        let total = plan.graph.nodes.reduce(0) { $0 + $1.type.elementCount * 4 }
        XCTAssertLessThan(plan.schedule.predictedPeakBytes - testCosts.bytesPerOpenShard, total)
    }
}
