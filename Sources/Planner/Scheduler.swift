import Checkpoint
import IR

/// What `Scheduler.scheduleRelaxingTies` gave up to fit the budget: `magnitude_prune` ops that keep equal
/// magnitudes at their cuts in index order instead of PyTorch's.
public struct TieRelaxation: Hashable, Sendable {
    /// How many `magnitude_prune` ops were rewritten to index ties.
    public var prunes: Int
    /// The output tensors computed from them.
    public var tensors: [String]
    /// The most elements whose kept-or-zeroed fate can differ from PyTorch's, summed over those ops: per op,
    /// 2 · min(kept, n − kept) (both orders keep the same count, and only elements whose magnitude equals a cut's
    /// can change places; how many do depends on the data).
    public var maxDifferingElements: Int
    /// The smallest budget with which no tie order would be given up (bytes).
    public var neededBytes: Int

    /// `maxDifferingElements`' term for an op keeping ranks `keep` of `elementCount` elements.
    static func maxDiffering(keep: Range<Int>, elementCount n: Int) -> Int {
        let kept = max(0, min(n, keep.upperBound) - max(0, keep.lowerBound))
        return 2 * min(kept, n - kept)
    }

    /// The one warning of a run: which tensors, how many ops, the bound on differing elements, the budget needed
    /// as a `--max-memory` value to pass (`neededBytes` rounded up to whole MiB, so that the value shown is enough:
    /// a one-decimal `formatBytes` of it can round down) and in bytes. Both budgets are also given in bytes, so two
    /// budgets that round alike (`4.0 MiB`) still read as different.
    public func warning(budget: Int) -> String {
        let quoted = tensors.prefix(3).map { name in "'" + name + "'" }
        let names = quoted.joined(separator: ", ") + (tensors.count > 3 ? ", …" : "")
        let mebibytes = (neededBytes + (1 << 20) - 1) >> 20
        return "warning: --max-memory \(formatByteCount(budget)) is too small to keep PyTorch's order "
            + "among equal magnitudes at the TIES/breadcrumbs cut of \(tensors.count) tensor(s) (\(names)); \(prunes) "
            + "magnitude_prune op(s) keep equal magnitudes in index order instead, so their masks may differ from "
            + "mergekit's in at most \(maxDifferingElements) entries, summed over those ops (only where a magnitude "
            + "equals the cut's); "
            + "--max-memory \(mebibytes)MiB (at least \(neededBytes) bytes) keeps PyTorch's order everywhere"
    }
}

/// Orders a graph for chunked execution: splits outputs into shards as mergekit does, groups the outputs that
/// share work, orders each group's values so few chunk buffers are alive at once, frees every buffer after its
/// last use, and picks each group's chunk size so that the run fits the memory budget.
public enum Scheduler {

    /// How the scheduler sizes chunks.
    public struct Limits: Sendable {
        /// Bytes the executor may hold (chunk buffers, kernel state, input staging, writer buffers).
        public var budgetBytes: Int
        /// Largest chunk in elements (at least one row is always taken): 2^18 f32 elements (1 MiB) keep a
        /// chunk's working set in the caches; bigger chunks run slower.
        public var maxChunkElements: Int
        /// Worker threads (per-thread kernel state grows with them).
        public var threads: Int
        /// Keep the operands of statistics passes whole, and let kernels that offer to hold their operands
        /// themselves (`KernelCost.holding`) do so, when the budget allows, instead of recomputing them.
        public var retainAcrossPasses: Bool
        /// Groups run at once, each on one thread (`Schedule.lanes`); 1 (the default): one group at a time, its
        /// kernels' loops on all `threads`. More lanes than threads are not used.
        public var lanes: Int
        /// The least recomputation, in element-steps (a step's op over one element in one sweep), that holding
        /// operands must save per byte it adds to what the run touches (`Scheduler.amortizedHolding`); 0: kernels
        /// hold their operands wherever the group fits.
        public var heldStepsPerPeakByte: Int
        /// Fit each shape of group once and give groups of the same shape that fit (`FitMemo`); false (tests): fit
        /// every group anew.
        var fitsByShape = true

        public init(budgetBytes: Int = Int.max / 4, maxChunkElements: Int = 1 << 18, threads: Int = 1,
                    retainAcrossPasses: Bool = true, lanes: Int = 1,
                    heldStepsPerPeakByte: Int = Scheduler.defaultHeldStepsPerPeakByte) {
            self.budgetBytes = budgetBytes
            self.maxChunkElements = maxChunkElements
            self.threads = threads
            self.retainAcrossPasses = retainAcrossPasses
            self.lanes = lanes
            self.heldStepsPerPeakByte = heldStepsPerPeakByte
        }
    }

    /// `Limits.heldStepsPerPeakByte`'s default: 8 element-steps per byte. Memory a process touches first costs
    /// about 0.5 ns a byte on the Zen 3 VM and 2–9 ns on the Zen 5 VM (whose guest reports freed pages to its
    /// host, so that the host backs them again on first touch), once per run since the executor's pool reuses its
    /// peak; a step recomputed costs about 0.2 ns an element (DARE-TIES on the 1b bench models: holding saved 1.4 s
    /// of 6.6 G element-steps on the AVX-512 Intel VM). At 8, holding the two vocabulary tensors' DARE/DELLA operands
    /// (3.0 element-steps per byte of the 250 MiB they add at `--max-memory 512MiB`; peak RSS 452 MiB against 232,
    /// 1.5–2 s of system time on the Zen 5 VM, against about 0.04 s of recomputation elsewhere) and TIES's (once the
    /// layers' prunes defer their sort entries, `TieCut.deferred`, 4.2 per byte of the 59 MiB they add with two sets
    /// of entries counted per lane, 2.0 per byte of 125 MiB with one: ties3's peak RSS 343 MiB against 428–449 held,
    /// system time 2.0–2.5 s against 5.1–6.2) are declined, while multislerp's (three sweeps saved, 9 per byte) and
    /// every hold within the peak the other tensors need anyway are granted. On this VM a byte first touched costs
    /// 10–45 steps; 8 leaves a margin for machines whose first touch is cheaper.
    public static let defaultHeldStepsPerPeakByte = 8

    /// Schedules `graph`: shards of at most `maxShardBytes` (0: one shard), groups, steps and frees, statistics
    /// sweeps and chunk sizes from the kernels' declared costs (`costs`), within `limits.budgetBytes`.
    /// - Throws: `PlanError.budgetTooSmall` when a group cannot run one row at a time within the budget.
    public static func schedule(_ graph: Graph, maxShardBytes: Int, costs: CostModel,
                                limits: Limits = Limits()) throws(PlanError) -> Schedule {
        var relaxed: Set<ValueID>? = nil
        return try schedule(graph, maxShardBytes: maxShardBytes, costs: costs, limits: limits, relaxing: &relaxed)
    }

    /// Schedules `graph` as `schedule` does, but where a group cannot run one row at a time within the budget
    /// because of `magnitude_prune` ops keeping PyTorch's order among equal magnitudes (whose kernels gather the
    /// whole tensor), gives that order up for index order on as few of them as it takes, the largest first.
    /// Returns the graph with those ops rewritten (`--dump-ir` shows `index ties` on them), its schedule, and what
    /// was given up (nil when nothing was).
    /// - Throws: `PlanError.budgetTooSmall` when a group does not fit even with index order everywhere.
    public static func scheduleRelaxingTies(_ graph: Graph, maxShardBytes: Int, costs: CostModel,
                                            limits: Limits = Limits()) throws(PlanError)
        -> (graph: Graph, schedule: Schedule, relaxation: TieRelaxation?) {
        var relaxed: Set<ValueID>? = []
        let exact = try schedule(graph, maxShardBytes: maxShardBytes, costs: costs, limits: limits, relaxing: &relaxed)
        guard let relaxed, !relaxed.isEmpty else { return (graph, exact, nil) }
        // What the whole plan needs at least with PyTorch's order everywhere (index order only where the group would
        // not fit even then): without operands kept whole or held by their kernels, which the planner grants only
        // when they fit (with no budget it grants them, and their bytes would overstate the need).
        let strict = Limits(budgetBytes: Int.max / 4, maxChunkElements: limits.maxChunkElements, threads: limits.threads,
                            retainAcrossPasses: false)
        var none: Set<ValueID>? = nil
        let needed = try schedule(graph, maxShardBytes: maxShardBytes, costs: costs, limits: strict, relaxing: &none)
            .groups.map { $0.bytes(rows: 1) }.max() ?? 0
        var relaxation = TieRelaxation(prunes: relaxed.count, tensors: [], maxDifferingElements: 0, neededBytes: needed)
        let rewritten = graph.rewritten { id, node, result in
            var node = node
            if relaxed.contains(id), case .magnitudePrune(let keep, let rescale, _) = node.op {
                node.op = .magnitudePrune(keep: keep, rescale: rescale, ties: .index)
                relaxation.maxDifferingElements += TieRelaxation.maxDiffering(keep: keep, elementCount: node.type.elementCount)
            }
            return result.append(node)
        }
        for output in graph.outputs where !cone(of: output.value, graph: graph).isDisjoint(with: relaxed) {
            relaxation.tensors.append(output.name)
        }
        let schedule = try schedule(rewritten, maxShardBytes: maxShardBytes, costs: costs, limits: limits)
        return (rewritten, schedule, relaxation)
    }

    /// `schedule`; with `relaxing` non-nil, gives up PyTorch's tie order on the `magnitude_prune` ops of a group
    /// that does not fit otherwise, collecting them in `relaxing` (the costs are those of the ops so rewritten).
    private static func schedule(_ graph: Graph, maxShardBytes: Int, costs: CostModel, limits: Limits,
                                 relaxing: inout Set<ValueID>?) throws(PlanError) -> Schedule {
        let shards = assignShards(graph, maxShardBytes: maxShardBytes)
        let members = outputGroups(graph, order: shards.flatMap(\.outputs))
        // Each shard's writer is open from the start of the first group writing to it to the end of the last.
        var shardOf: [Int: Int] = [:]
        for (s, shard) in shards.enumerated() { for o in shard.outputs { shardOf[o] = s } }
        var firstGroup = [Int](repeating: Int.max, count: shards.count)
        var lastGroup = [Int](repeating: -1, count: shards.count)
        for (g, outputs) in members.enumerated() {
            for o in outputs {
                guard let s = shardOf[o] else { continue }
                firstGroup[s] = min(firstGroup[s], g)
                lastGroup[s] = max(lastGroup[s], g)
            }
        }
        var groups: [ChunkGroup] = []
        /// Groups that hold operands, planned without holding (by index in `groups`).
        var unheld: [Int: ChunkGroup] = [:]
        /// The largest one-row need of a group that does not fit (bytes), its first output, and the write buffers of
        /// the shards open while it runs (bytes, part of the need).
        var tooSmall: (bytes: Int, tensor: String, writers: Int)?
        let lanes = min(limits.lanes, limits.threads)
        var memo = FitMemo()
        let alonePastTheEnd = endsAlone(
            elements: members.map { $0.reduce(0) { $0 + graph[graph.outputs[$1].value].type.elementCount } }, lanes: lanes)
        for (g, outputs) in members.enumerated() {
            let last = alonePastTheEnd[g]
            var group = plan(outputs, graph: graph)
            group.opensShards = shards.indices.filter { firstGroup[$0] == g }
            group.closesShards = shards.indices.filter { lastGroup[$0] == g }
            group.writerBytes = shards.indices.filter { firstGroup[$0] <= g && g <= lastGroup[$0] } .count * costs.bytesPerOpenShard
            group.outputBytes = group.steps.flatMap(\.writes).reduce(0) { $0 + graph[graph.outputs[$1].value].type.byteCount }
            // On a lane the group has its share of the budget, less the outputs it may have to hold (what PyTorch's
            // tie order needs is never given up for it), if it holds there the operands it holds with the whole
            // budget: holding saves more than a lane gains (bf16 multislerp holding its operands takes half the
            // time); otherwise it runs alone within the whole budget.
            var need = 0
            guard let alone = memo.fitted(group, budget: limits.budgetBytes, graph: graph, costs: costs, limits: limits,
                                          relaxing: &relaxing, relax: true, need: &need) else {
                // Go on through the other groups, so that the error names the budget every tensor fits in.
                if need > (tooSmall?.bytes ?? 0) { tooSmall = (need, graph.outputs[outputs[0]].name, group.writerBytes) }
                continue
            }
            let share = lanes > 1 ? limits.budgetBytes / lanes - group.outputBytes : 0
            /// The group on a lane if it fits there holding what it holds alone (nil: not), else alone.
            /// The last group (`last`) runs the lane's plan alone on all threads (costs are per thread, for all of
            /// them): no more memory than on a lane.
            func placed(_ alone: ChunkGroup, hold: Bool) -> ChunkGroup {
                if share > 0, var concurrent = memo.fitted(group, budget: share, graph: graph, costs: costs,
                                                           limits: limits, relaxing: &relaxing, relax: false, hold: hold,
                                                           finishers: 1, need: &need),
                   concurrent.holding == alone.holding {
                    concurrent.concurrent = !last
                    return concurrent
                }
                return alone
            }
            groups.append(placed(alone, hold: true))
            // A group holding operands may be declined it (`amortizedHolding`): how it runs without.
            if !groups[groups.count - 1].holding.isEmpty, limits.heldStepsPerPeakByte > 0,
               let bare = memo.fitted(group, budget: limits.budgetBytes, graph: graph, costs: costs, limits: limits,
                                      relaxing: &relaxing, relax: true, hold: false, need: &need) {
                unheld[groups.count - 1] = placed(bare, hold: false)
            }
        }
        if let tooSmall {
            throw .budgetTooSmall(budget: limits.budgetBytes, smallest: tooSmall.bytes, tensor: tooSmall.tensor,
                                  writerBytes: tooSmall.writers)
        }
        let schedule = Schedule(groups: groups, shards: shards, budgetBytes: limits.budgetBytes, threads: limits.threads)
        return amortizedHolding(schedule, unheld: unheld, lanes: lanes, stepsPerByte: limits.heldStepsPerPeakByte)
    }

    /// Which of the groups whose outputs have `elements` elements (in schedule order) run alone on all threads with
    /// their lane's plan although they fit on a lane (`lanes` > 1): a group followed by less than a quarter of its
    /// elements and more than twice as large as any of the `lanes − 1` groups before it (those that may still run
    /// when it starts). On a lane it would run with no work beside it for most of its time; waiting for those groups
    /// and halving its own time ends the run sooner (`lm_head` after the layers of a 1b model: sce3 ran it for
    /// 0.97–1.08 s on one lane while the other had nothing left, 0.64–0.69 s alone).
    public static func endsAlone(elements: [Int], lanes: Int) -> [Bool] {
        guard lanes > 1 else { return elements.map { _ in false } }
        var after = 0
        var result = [Bool](repeating: false, count: elements.count)
        for g in elements.indices.reversed() {
            let beside = elements[max(0, g - (lanes - 1))..<g].max() ?? 0
            result[g] = after * 4 < elements[g] && beside * 2 < elements[g]
            after += elements[g]
        }
        return result
    }

    /// `schedule` (before `assignLanes`) with the operands held by groups (alone or on a lane) declined where holding
    /// them does not pay for the memory it adds: with `unheld[g]` group `g` planned without holding, the groups in
    /// increasing order of their peak, the plan keeps holding on the first k of them for the k that maximizes
    /// (element-steps of recomputation they save) − `stepsPerByte` · (bytes added to what the run touches over the
    /// plan holding on none of them). A hold within the peak the rest of the plan needs anyway adds nothing and is kept;
    /// the executor's pool reuses the peak from tensor to tensor, so a hold shared by many tensors of one shape is
    /// paid once and saves on each. Returns the schedule with lanes assigned.
    static func amortizedHolding(_ schedule: Schedule, unheld: [Int: ChunkGroup], lanes: Int,
                                 stepsPerByte: Int) -> Schedule {
        guard stepsPerByte > 0, !unheld.isEmpty else { return assignLanes(schedule, lanes: lanes) }
        /// Element-steps a sweep computes in `group`, over its sweeps.
        func elementSteps(_ group: ChunkGroup) -> Int {
            group.sweeps.reduce(0) { $0 + $1.computes.count } * group.elementCount
        }
        /// The bytes a run of `schedule` touches at most: a group alone, or every lane running the largest group on
        /// the lanes (the lanes' window also reserves outputs that a lane buffers while the writer is behind, which
        /// it seldom is: `dare_ties3`'s plan at `--max-memory 512MiB` reserves 442 MiB for a run whose RSS peaks at
        /// 300–306 MiB).
        func touched(_ schedule: Schedule) -> Int {
            let laned = assignLanes(schedule, lanes: lanes)
            let alone = laned.groups.filter { !$0.concurrent }.map(\.peakBytes).max() ?? 0
            let onLanes = laned.groups.filter(\.concurrent).map(\.peakBytes).max() ?? 0
            return max(alone, laned.lanes * onLanes)
        }
        let candidates = unheld.keys.sorted { (schedule.groups[$0].peakBytes, $0) < (schedule.groups[$1].peakBytes, $1) }
        /// Element-steps each candidate's holding saves.
        let saving = Dictionary(uniqueKeysWithValues: unheld.map { g, bare in
            (g, max(0, elementSteps(bare) - elementSteps(schedule.groups[g])))
        })
        var trial = schedule
        for g in candidates { trial.groups[g] = unheld[g]! }
        let floor = touched(trial)
        var best = (score: 0, count: 0), saved = 0
        for (k, g) in candidates.enumerated() {
            trial.groups[g] = schedule.groups[g]
            saved += saving[g]!
            let added = max(0, touched(trial) - floor)
            let score = saved - stepsPerByte * added
            if score > best.score { best = (score, k + 1) }
        }
        var result = schedule
        let declined = Array(candidates.dropFirst(best.count))
        for g in declined { result.groups[g] = unheld[g]! }
        // Reported: the groups whose holding would have saved work (declining one that saves nothing is no choice).
        let forgone = declined.filter { saving[$0]! > 0 }
        if !forgone.isEmpty {
            var all = result
            for g in forgone { all.groups[g] = schedule.groups[g] }
            result.declinedHolding = DeclinedHolding(
                groups: forgone.sorted(), addedBytes: max(0, touched(all) - touched(result)),
                savedElementSteps: forgone.reduce(0) { $0 + saving[$1]! },
                stepsPerByte: stepsPerByte)
        }
        return assignLanes(result, lanes: lanes)
    }

    /// `schedule` with `lanes` lanes when some of its groups are concurrent: the window is `lanes` times the largest
    /// concurrent group's `laneBytes` (its peak within its share of the budget plus its outputs), plus the most a
    /// finished concurrent group keeps until the groups ahead of it are written (its outputs, `outputBytes`, and its
    /// writers, `writerBytes`), within the budget. Without that addition a lane that finished one of a layer's large
    /// groups (an MLP projection) while the head still ran another could not start the third until the head was
    /// written: in `ties3` at `--max-memory 512MiB` (window 294 MiB for groups of 147 MiB, 25 MiB kept) one lane waited
    /// 2.1–2.5 s a run in 50–130 ms waits, about a tenth of the two cores' time; with it 0.05–0.25 s
    /// (docs/performance-history.md, 2026-12-04).
    ///
    /// Why groups rather than chunks: a kernel's loop split over two threads joins them at every chunk (about 18
    /// times a chunk for DARE-TIES), and on a 2-core VM the second thread sleeps and is woken hundreds of times a
    /// run; two groups on one thread each never wait for each other within a tensor.
    static func assignLanes(_ schedule: Schedule, lanes: Int) -> Schedule {
        var schedule = schedule
        let concurrent = schedule.groups.filter(\.concurrent)
        let largest = concurrent.map(\.laneBytes).max() ?? 0
        // No more lanes than concurrent groups (`--threads 1000` on 39 groups).
        let lanes = min(lanes, concurrent.count)
        guard lanes > 1, largest > 0 else {
            for g in schedule.groups.indices { schedule.groups[g].concurrent = false }
            return schedule
        }
        schedule.lanes = lanes
        let kept = concurrent.map { $0.outputBytes + $0.writerBytes }.max() ?? 0
        schedule.laneWindowBytes = min(schedule.budgetBytes, lanes * largest + kept)
        return schedule
    }

    /// `group` planned within `budget` bytes: its sweeps, the operands kept whole or held by their kernels while it
    /// still fits, and its chunk size; nil when it does not fit one row at a time, with the bytes it needs then in
    /// `need`. With `relax`, PyTorch's tie order is given up on its largest `magnitude_prune` ops (collected in
    /// `relaxing`) as far as it takes to fit; without, never. Without `hold`, no kernel holds its operands.
    /// `finishers`: the most kernels that finish a pass at once (1 on a lane; nil, `limits.threads`).
    static func fitted(_ group: ChunkGroup, budget: Int, graph: Graph, costs: CostModel, limits: Limits,
                       relaxing: inout Set<ValueID>?, relax: Bool, hold: Bool = true,
                       finishers: Int? = nil, need: inout Int) -> ChunkGroup? {
        var group = group
        var limits = limits
        limits.budgetBytes = budget
        group.finishingThreads = finishers ?? 0
        let finishing = finishers ?? limits.threads
        func cost(_ step: ScheduleStep) -> KernelCost {
            let node = graph[step.value]
            var op = node.op
            if relaxing?.contains(step.value) == true, case .magnitudePrune(let keep, let rescale, _) = op {
                op = .magnitudePrune(keep: keep, rescale: rescale, ties: .index)
            }
            return costs.cost(of: op, result: node.type, operands: node.operands.map { graph[$0].type },
                              threads: limits.threads)
        }
        var stepCosts = group.steps.map(cost)
        (group.sweeps, group.phases) = simulate(group, graph: graph, costs: stepCosts, retained: [], threads: finishing)
        // Too big: give up PyTorch's tie order where it saves the most, one prune at a time.
        while relax, group.bytes(rows: 1) > limits.budgetBytes, relaxing != nil {
            let candidates = group.steps.indices.filter { i in
                guard relaxing?.contains(group.steps[i].value) == false,
                      case .magnitudePrune(_, _, let ties) = graph[group.steps[i].value].op, ties.isTorch else { return false }
                return true
            }
            /// The state bytes giving up PyTorch's order on step `i` saves at its largest.
            func saving(_ i: Int) -> Int {
                relaxing?.insert(group.steps[i].value)
                defer { relaxing?.remove(group.steps[i].value) }
                return (stepCosts[i].passBytes.max() ?? 0) - (cost(group.steps[i]).passBytes.max() ?? 0)
            }
            guard let best = candidates.map({ ($0, saving($0)) }).filter({ $0.1 > 0 }).max(by: { $0.1 < $1.1 })?.0
            else { break }
            relaxing?.insert(group.steps[best].value)
            stepCosts[best] = cost(group.steps[best])
            (group.sweeps, group.phases) = simulate(group, graph: graph, costs: stepCosts, retained: [], threads: finishing)
        }
        guard group.bytes(rows: 1) <= limits.budgetBytes else {
            need = group.bytes(rows: 1)
            return nil
        }
        // Kernels that offer to hold their operands themselves, each while the group still fits with chunks as
        // large as without it: later sweeps then compute nothing for them.
        for i in group.steps.indices where limits.retainAcrossPasses && hold {
            guard let held = stepCosts[i].holdingOperands() else { continue }
            var costs = stepCosts
            costs[i] = held
            var holding = group
            holding.holding = (group.holding + [group.steps[i].value]).sorted()
            (holding.sweeps, holding.phases) = simulate(holding, graph: graph, costs: costs, retained: [],
                                                         threads: finishing)
            if holding.bytes(rows: chunkRows(group, limits: limits)) <= limits.budgetBytes {
                group = holding
                stepCosts = costs
            }
        }
        let keep = limits.retainAcrossPasses ? retainable(group, graph: graph, costs: stepCosts) : []
        if !keep.isEmpty {
            var kept = group
            kept.retained = keep
            (kept.sweeps, kept.phases) = simulate(kept, graph: graph, costs: stepCosts, retained: Set(keep),
                                                  threads: finishing)
            if kept.bytes(rows: 1) <= limits.budgetBytes { group = kept }
        }
        // Then, one at a time, the values whose recomputation costs the most, each while the group still fits.
        var tried = Set<ValueID>()
        search: while limits.retainAcrossPasses {
            for v in recomputedOften(group, graph: graph) where tried.insert(v).inserted {
                var kept = group
                kept.retained = (group.retained + [v]).sorted()
                (kept.sweeps, kept.phases) = simulate(kept, graph: graph, costs: stepCosts, retained: Set(kept.retained),
                                                      threads: finishing)
                if kept.bytes(rows: 1) <= limits.budgetBytes {
                    group = kept
                    continue search
                }
            }
            break
        }
        // Then swaps: a value its sweeps would compute again from the inputs, kept in place of a kept value one step
        // from it that takes as many bytes an element, while chunks stay as large.
        var swapsTried = Set<ValueID>()
        func keptBytesPerElement(_ v: ValueID) -> Int { group.keptBytesPerElement(graph[v].type.dtype) }
        swapping: while limits.retainAcrossPasses, !group.retained.isEmpty {
            let rows = chunkRows(group, limits: limits)
            for v in recomputedOften(group, graph: graph, atLeast: recomputedStepsWorthSwapping, observedOnly: false)
            where swapsTried.insert(v).inserted {
                guard let dropped = keptOneStepFrom(v, group: group, graph: graph, costs: stepCosts),
                      keptBytesPerElement(v) <= keptBytesPerElement(dropped) else { continue }
                var kept = group
                kept.retained = (group.retained.filter { $0 != dropped } + [v]).sorted()
                (kept.sweeps, kept.phases) = simulate(kept, graph: graph, costs: stepCosts, retained: Set(kept.retained),
                                                      threads: finishing)
                if kept.bytes(rows: 1) <= limits.budgetBytes, chunkRows(kept, limits: limits) >= rows {
                    group = kept
                    continue swapping
                }
            }
            break
        }
        group.chunkRows = chunkRows(group, limits: limits)
        return group
    }

    /// A kept value of `group` that `v` (not kept) would replace: one computed by a step that makes no passes from
    /// `v` and from values kept or computed, in one step, by kernels with passes from kept values (SCE's masked task
    /// vector, `mul(tv, mask)`, the mask from the kept variance, when the task vector `tv` is kept instead); of
    /// several, the one with the fewest operands, the cheapest to compute again (SCE's last task vector is one step
    /// from both its masked product and the variance: with the variance computed again in every sweep, sce3 ran in
    /// 8.5–9.2 s against 7.7–8.7, alternated four times); nil when none is.
    static func keptOneStepFrom(_ v: ValueID, group: ChunkGroup, graph: Graph, costs: [KernelCost]) -> ValueID? {
        var index: [ValueID: Int] = [:]
        for (i, step) in group.steps.enumerated() { index[step.value] = i }
        let kept = Set(group.retained).union([v])
        func makesPasses(_ x: ValueID) -> Bool { index[x].map { costs[$0].passes > 0 } ?? false }
        /// Computed in one step from kept values (or an input of the group's cone outside it: none are).
        func fromKept(_ x: ValueID) -> Bool {
            kept.contains(x) || (makesPasses(x) && graph[x].operands.allSatisfy(kept.contains))
        }
        return group.retained.filter { r in
            !makesPasses(r) && graph[r].operands.contains(v) && graph[r].operands.allSatisfy(fromKept)
        }.min { a, b in (graph[a].operands.count, a) < (graph[b].operands.count, b) }
    }

    /// Rows per chunk of `group`: as many as `limits.maxChunkElements` allows and every phase fits the budget with
    /// (at least 1).
    static func chunkRows(_ group: ChunkGroup, limits: Limits) -> Int {
        let cap = max(1, limits.maxChunkElements / max(1, group.rowElements))
        var rows = min(group.rowCount, cap)
        for phase in group.phases {
            let fixed = group.bytes(phase: phase, rows: 0)
            let perRow = max(1, group.bytes(phase: phase, rows: 1) - fixed)
            rows = min(rows, (limits.budgetBytes - fixed) / perRow)
        }
        return max(1, rows)
    }

    /// The sweeps of `group` as the executor runs them (the statistics sweeps, then the output sweep, which has no
    /// observers), and the memory of each. A node starts its passes in the first sweep after all its operands have finished theirs, and makes
    /// one per sweep; a sweep computes what its observers read (values kept whole by an earlier sweep are read
    /// from there); chunk buffers are freed at the steps' `frees`, and the pool keeps its largest size. A sweep's
    /// state includes what its observers hold while they finish their passes on `threads` threads
    /// (`KernelCost.finishingBytes`).
    static func simulate(_ group: ChunkGroup, graph: Graph, costs: [KernelCost],
                         retained: Set<ValueID>, threads: Int) -> ([Sweep], [PhaseMemory]) {
        let steps = group.steps
        var index: [ValueID: Int] = [:]
        for (i, step) in steps.enumerated() { index[step.value] = i }
        let operands = steps.map { graph[$0.value].operands.compactMap { index[$0] } }
        var passesMade = [Int](repeating: 0, count: steps.count)
        var started = [Bool](repeating: false, count: steps.count)
        var done = [Bool](repeating: false, count: steps.count)
        var complete = Set<Int>()
        var pool = 0, staging = 0, whole = 0, planes = 0
        /// Values kept whole as 2-byte planes: a chunk buffer holds each while a sweep computes or reads it (also
        /// when the runner hands the plane over packed and leaves the buffer unwritten).
        let plane = steps.map { group.keepsAsPlane(graph[$0.value].type.dtype) }
        var sweeps: [Sweep] = []
        var phases: [PhaseMemory] = []

        func run(computes: Set<Int>, observers: Set<Int>) -> PhaseMemory {
            var live = 0
            var buffered = Set<Int>()
            for i in steps.indices {
                // A kernel that reads inputs in its statistics passes (`vocab_gather`'s padding mean) stages them too.
                if observers.contains(i) { staging = max(staging, costs[i].stagingBytesPerElement) }
                if computes.contains(i), !observers.contains(i) {
                    // (Values computed by an earlier sweep, `complete`, are kept whole.)
                    let computed = !complete.contains(i), kept = retained.contains(steps[i].value)
                    if computed, kept {
                        if plane[i] { planes += 1 } else { whole += 1 }
                    }
                    // A chunk buffer: a value not kept whole, or one kept as a plane (computed or unpacked into it).
                    if !kept || plane[i] {
                        live += 1
                        buffered.insert(i)
                        pool = max(pool, live)
                    }
                    if computed { staging = max(staging, costs[i].stagingBytesPerElement) }
                }
                for v in steps[i].frees {
                    if let f = index[v], buffered.remove(f) != nil { live -= 1 }
                }
            }
            // The observers finish their passes on the group's threads, each holding its finishing bytes meanwhile.
            let finishing = KernelCost.finishingBytes(observers.map { costs[$0].finishBytes(pass: passesMade[$0]) },
                                                      threads: threads)
            let state = steps.indices.reduce(finishing) { total, i in
                total + costs[i].bytes(pass: started[i] ? passesMade[i] : -1)
            }
            return PhaseMemory(buffers: pool, stagingBytesPerElement: staging, stateBytes: state, wholeValues: whole,
                               wholePlanes: planes)
        }

        while true {
            var observers: [Int] = []
            for i in steps.indices where !done[i] && operands[i].allSatisfy({ done[$0] }) {
                if passesMade[i] < costs[i].passes {
                    observers.append(i)
                    started[i] = true
                } else {
                    done[i] = true
                }
            }
            if observers.isEmpty { break }
            let cone = cone(of: observers.filter(readsOperands).flatMap { operands[$0] })
            phases.append(run(computes: cone, observers: Set(observers)))
            sweeps.append(Sweep(observers: observers, computes: cone.sorted()))
            for i in cone where retained.contains(steps[i].value) { complete.insert(i) }
            for o in observers { passesMade[o] += 1 }
        }
        let outputs = cone(of: steps.indices.filter { !steps[$0].writes.isEmpty })
        phases.append(run(computes: outputs, observers: []))
        sweeps.append(Sweep(observers: [], computes: outputs.sorted()))
        return (sweeps, phases)

        /// The steps `roots` need, themselves included; a value kept whole by an earlier sweep, or computed by a
        /// kernel holding its operands, needs nothing more.
        func cone(of roots: [Int]) -> Set<Int> {
            var cone = Set<Int>()
            var stack = roots
            while let i = stack.popLast() {
                if cone.insert(i).inserted, !complete.contains(i), readsOperands(i) {
                    stack.append(contentsOf: operands[i])
                }
            }
            return cone
        }

        /// Whether step `i` reads its operands in its next pass (or, its passes made, in the output sweep).
        func readsOperands(_ i: Int) -> Bool { costs[i].readsOperands(pass: passesMade[i]) }
    }

    /// The operands of statistics passes that are themselves computed through statistics passes (a stage's
    /// result read by the next stage's slerp, say): kept whole rather than recomputed on every pass. Cheaper
    /// operands (inputs, task vectors) are recomputed chunk by chunk, which costs less than writing and
    /// reading back whole tensors; so is a value one step from kept ones.
    static func retainable(_ group: ChunkGroup, graph: Graph, costs: [KernelCost]) -> [ValueID] {
        var takesPasses: [ValueID: Bool] = [:]
        for (i, step) in group.steps.enumerated() { takesPasses[step.value] = costs[i].passes > 0 }
        var passesInCone: [ValueID: Bool] = [:]
        func hasPasses(_ v: ValueID) -> Bool {
            if let known = passesInCone[v] { return known }
            let result = takesPasses[v] == true || graph[v].operands.contains(where: hasPasses)
            passesInCone[v] = result
            return result
        }
        var values = Set<ValueID>()
        // A kernel holding its operands after its first pass reads them once: nothing to keep for it.
        for (i, step) in group.steps.enumerated() where takesPasses[step.value] == true && costs[i].readsOperands(pass: 1) {
            values.formUnion(graph[step.value].operands.filter(hasPasses))
        }
        // A value that makes no passes of its own and whose operands all stay kept is one step from them: computed
        // again from them, not kept (SCE's elected signs, from its masked task vectors: 4 bytes an element less).
        // Decided in value order (operands first), so that a value is dropped only if its operands stay.
        for v in values.sorted() where takesPasses[v] != true && graph[v].operands.allSatisfy(values.contains) {
            values.remove(v)
        }
        return values.sorted()
    }

    /// The operands of statistics passes whose recomputation costs more than keeping them whole, most costly
    /// first: those the group's sweeps would compute again, counted in steps (the sweeps after the first that
    /// compute the value, times the steps of its cone: loads, task vectors' `sub`s, …), at least
    /// `recomputedStepsWorthKeeping` times. Kept whole (f32) when the budget allows, their inputs are read and
    /// decoded once instead of once per sweep: multislerp's task vectors (four passes and the output sweep, 3 steps
    /// each: 12), SCE's variance (two more sweeps of 8 steps: 16).
    /// With `observedOnly` false, any value of the group the sweeps compute again, not only statistics passes'
    /// operands, with its steps counted as theirs are (`recomputedStepsWorthSwapping`).
    static func recomputedOften(_ group: ChunkGroup, graph: Graph,
                                atLeast threshold: Int = recomputedStepsWorthKeeping,
                                observedOnly: Bool = true) -> [ValueID] {
        var computations = [Int](repeating: 0, count: group.steps.count)
        for sweep in group.sweeps { for i in sweep.computes { computations[i] += 1 } }
        var index: [ValueID: Int] = [:]
        for (i, step) in group.steps.enumerated() { index[step.value] = i }
        let retained = Set(group.retained)
        /// Steps computing `v` from scratch (values kept whole cost nothing).
        func coneSteps(_ v: ValueID) -> Int {
            var seen = Set<ValueID>()
            var stack = [v]
            while let x = stack.popLast() {
                if index[x] != nil, x == v || !retained.contains(x), seen.insert(x).inserted {
                    stack.append(contentsOf: graph[x].operands)
                }
            }
            return seen.count
        }
        let candidates = observedOnly
            ? group.sweeps.flatMap { $0.observers.flatMap { graph[group.steps[$0].value].operands } }
            : group.steps.map(\.value)
        var saved: [ValueID: Int] = [:]
        for v in candidates {
            guard let i = index[v], computations[i] > 1, !retained.contains(v) else { continue }
            let steps = (computations[i] - 1) * coneSteps(v)
            if steps >= threshold { saved[v] = steps }
        }
        return saved.sorted { a, b in a.value != b.value ? a.value > b.value : a.key < b.key }.map(\.key)
    }

    /// Recomputed steps (see `recomputedOften`) that cost more than keeping a value whole. Measured on the 1b
    /// bench models with `--max-memory 512MiB`: an input read three times (slerp2, nuslerp2, arcee_fusion2: 2
    /// recomputed steps) and TIES/DARE task vectors read again in the output sweep (3) ran no faster kept whole;
    /// multislerp's task vectors (12) ran 25% faster.
    static let recomputedStepsWorthKeeping = 4

    /// Recomputed steps that are worth keeping a value whole in place of a kept value one step from it, at as many
    /// bytes an element (`keptOneStepFrom`): SCE's task vectors (a load of the fine-tune and of the base and the
    /// `sub`, computed again in the sweep that keeps the masked task vectors: 3). The layers then read the
    /// fine-tunes once, not twice: sce3 on the 1b bench models with `--max-memory 512MiB`, alternated four times on
    /// the Zen 4 VM, 7.2–8.5 s (system time 2.0–2.3 s) against 7.7–9.2 s (2.6–3.3 s), same bytes and peak.
    static let recomputedStepsWorthSwapping = 3

    /// Outputs in write order, grouped (by first appearance) when they share a node and a shape.
    static func outputGroups(_ graph: Graph, order: [Int]) -> [[Int]] {
        var groups: [[Int]] = []
        var groupOfNode: [ValueID: Int] = [:]
        for o in order {
            let output = graph.outputs[o]
            let shape = graph[output.value].type.shape
            let cone = self.cone(of: output.value, graph: graph)
            // The earliest group sharing a node (a Set's order is not stable) whose shape matches.
            let target = cone.compactMap { groupOfNode[$0] }
                .filter { graph[graph.outputs[groups[$0][0]].value].type.shape == shape }.min()
            let g: Int
            if let target {
                g = target
                groups[g].append(o)
            } else {
                g = groups.count
                groups.append([o])
            }
            for v in cone where groupOfNode[v] == nil { groupOfNode[v] = g }
        }
        return groups
    }

    private static func cone(of root: ValueID, graph: Graph) -> Set<ValueID> {
        var seen = Set<ValueID>()
        var stack = [root]
        while let v = stack.popLast() {
            if seen.insert(v).inserted { stack.append(contentsOf: graph[v].operands) }
        }
        return seen
    }

    /// Steps and frees of one group (chunk rows still 1, no sweeps or memory yet).
    static func plan(_ outputs: [Int], graph: Graph) -> ChunkGroup {
        var steps: [ScheduleStep] = []
        var stepOf: [ValueID: Int] = [:]
        for o in outputs {
            visit(graph.outputs[o].value, graph: graph, steps: &steps, stepOf: &stepOf)
            steps[stepOf[graph.outputs[o].value]!].writes.append(o)
        }
        var lastUse: [ValueID: Int] = [:]
        for (i, step) in steps.enumerated() {
            lastUse[step.value] = max(lastUse[step.value] ?? i, i)
            for operand in graph[step.value].operands { lastUse[operand] = i }
        }
        for (v, i) in lastUse.sorted(by: { $0.key < $1.key }) { steps[i].frees.append(v) }
        for i in steps.indices { steps[i].frees.sort() }
        let shape = graph[graph.outputs[outputs[0]].value].type.shape
        let count = shape.reduce(1, *)
        let rowElements = shape.count >= 2 ? count / max(1, shape[0]) : count
        let widest = steps.map { graph[$0.value].type.dtype }.filter { !$0.isFloatingPoint }.map(\.byteSize).max() ?? 4
        return ChunkGroup(steps: steps, shape: shape, rowElements: rowElements, chunkRows: 1, phases: [],
                          bufferBytesPerElement: max(4, widest))
    }

    /// Depth-first from `root`; among a node's operands, the one that needs the most buffers to compute goes
    /// first (Sethi–Ullman order), so fewer finished operands wait while another is computed.
    private static func visit(_ root: ValueID, graph: Graph, steps: inout [ScheduleStep], stepOf: inout [ValueID: Int]) {
        var need: [ValueID: Int] = [:]
        var stack: [(ValueID, Bool)] = [(root, false)]
        while let (v, expanded) = stack.popLast() {
            if stepOf[v] != nil { continue }
            if expanded {
                stepOf[v] = steps.count
                steps.append(ScheduleStep(value: v, writes: [], frees: []))
            } else {
                stack.append((v, true))
                let pending = graph[v].operands.filter { stepOf[$0] == nil }
                let ordered = pending.enumerated().sorted { a, b in
                    let (na, nb) = (buffersNeeded(a.element, graph, stepOf, &need), buffersNeeded(b.element, graph, stepOf, &need))
                    return na != nb ? na > nb : a.offset < b.offset
                }.map(\.element)
                for operand in ordered.reversed() { stack.append((operand, false)) }
            }
        }
    }

    /// Buffers alive at once while `v` is computed from scratch, its operands in Sethi–Ullman order
    /// (values already computed cost nothing more).
    private static func buffersNeeded(_ v: ValueID, _ graph: Graph, _ stepOf: [ValueID: Int],
                                      _ memo: inout [ValueID: Int]) -> Int {
        if let known = memo[v] { return known }
        var order: [(ValueID, Bool)] = [(v, false)]
        while let (x, expanded) = order.popLast() {
            if memo[x] != nil { continue }
            let operands = graph[x].operands.filter { stepOf[$0] == nil }
            if expanded {
                let needs = operands.map { memo[$0] ?? 1 }.sorted(by: >)
                memo[x] = max(needs.enumerated().map { $0.element + $0.offset }.max() ?? 0, operands.count + 1)
            } else {
                order.append((x, true))
                for o in operands where memo[o] == nil { order.append((o, false)) }
            }
        }
        return memo[v] ?? 1
    }

    /// mergekit's rule, per output directory: start a new shard when adding the next tensor would pass the limit.
    static func assignShards(_ graph: Graph, maxShardBytes: Int) -> [Shard] {
        var directories: [String] = []
        for output in graph.outputs where !directories.contains(output.directory) { directories.append(output.directory) }
        return directories.flatMap { directory in
            let members = graph.outputs.indices.filter { graph.outputs[$0].directory == directory }
            return assignShards(graph, outputs: members, maxShardBytes: maxShardBytes).map { shard in
                var shard = shard
                if !directory.isEmpty { shard.fileName = "\(directory)/\(shard.fileName)" }
                return shard
            }
        }
    }

    private static func assignShards(_ graph: Graph, outputs: [Int], maxShardBytes: Int) -> [Shard] {
        var groups: [(outputs: [Int], bytes: Int)] = []
        for i in outputs {
            let size = graph[graph.outputs[i].value].type.byteCount
            if let last = groups.last, !last.outputs.isEmpty, maxShardBytes > 0, last.bytes + size > maxShardBytes {
                groups.append(([], 0))
            }
            if groups.isEmpty { groups.append(([], 0)) }
            groups[groups.count - 1].outputs.append(i)
            groups[groups.count - 1].bytes += size
        }
        return groups.enumerated().map { i, g in
            Shard(fileName: ShardNaming.fileName(shard: i + 1, of: groups.count), outputs: g.outputs, byteCount: g.bytes)
        }
    }
}
