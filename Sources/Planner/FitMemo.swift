import IR

/// The fits of one scheduling (`Scheduler.fitted`) by the groups' shapes, so that groups differing only in their
/// values' IDs — a model's layers — are fitted once and the others take that fit with their own IDs.
///
/// A fit depends on a group's steps — their ops (loads and LoRA deltas without their tensor names), result types,
/// kernel costs (which carry what a load's stored dtype changes), operand links, writes and frees, as positions in
/// the group, and the order of their IDs (which breaks ties between candidates) — on its shape, chunk buffers, writers
/// and outputs, and on the call's budget and options and which of its steps give up PyTorch's tie order; not on the
/// IDs themselves. A group whose steps read or free values outside it, or that already keeps or holds values, is
/// fitted without the memo. Planning a 1b model's 201 groups fitted each 3–4 times, 0.24–0.44 s on one thread before
/// the first tensor; most of them are a few shapes repeated by its 22 layers.
struct FitMemo {
    private struct Key: Hashable {
        var ops: [Op]
        var types: [TensorType]
        var costs: [KernelCost]
        var operands: [[Int]]
        var order: [Int]
        var writes: [Int]
        var frees: [[Int]]
        var shape: [Int]
        var rowElements: Int
        var bufferBytesPerElement: Int
        var writerBytes: Int
        var outputBytes: Int
        var budget: Int
        var relax: Bool
        var hold: Bool
        var finishers: Int?
        /// Positions of the steps `relaxing` holds; nil when the scheduling gives nothing up.
        var relaxed: [Int]?
    }

    /// A fit in positions: the fitted group (nil: it did not fit) with its kept and held values as step positions,
    /// the need it reported, and the steps `relaxing` holds after it.
    private struct Fit {
        var group: ChunkGroup?
        var retained: [Int]
        var holding: [Int]
        var need: Int?
        var relaxed: [Int]?
    }

    private var fits: [Key: Fit] = [:]

    /// `Scheduler.fitted(group, …)`, served from an earlier fit of a group of the same shape when there is one.
    mutating func fitted(_ group: ChunkGroup, budget: Int, graph: Graph, costs: CostModel, limits: Scheduler.Limits,
                         relaxing: inout Set<ValueID>?, relax: Bool, hold: Bool = true, finishers: Int? = nil,
                         need: inout Int) -> ChunkGroup? {
        func direct() -> ChunkGroup? {
            Scheduler.fitted(group, budget: budget, graph: graph, costs: costs, limits: limits, relaxing: &relaxing,
                             relax: relax, hold: hold, finishers: finishers, need: &need)
        }
        guard limits.fitsByShape, group.retained.isEmpty, group.holding.isEmpty else { return direct() }
        let steps = group.steps
        var position: [ValueID: Int] = [:]
        for (i, step) in steps.enumerated() { position[step.value] = i }
        var operands: [[Int]] = [], frees: [[Int]] = []
        for step in steps {
            let links = graph[step.value].operands.compactMap { position[$0] }
            let freed = step.frees.compactMap { position[$0] }
            guard links.count == graph[step.value].operands.count, freed.count == step.frees.count else { return direct() }
            operands.append(links)
            frees.append(freed)
        }
        var order = [Int](repeating: 0, count: steps.count)
        for (rank, i) in steps.indices.sorted(by: { steps[$0].value < steps[$1].value }).enumerated() { order[i] = rank }
        let nodes = steps.map { graph[$0.value] }
        func positions(_ values: Set<ValueID>?) -> [Int]? {
            values.map { set in steps.indices.filter { set.contains(steps[$0].value) } }
        }
        let key = Key(ops: nodes.map { Self.anonymous($0.op) }, types: nodes.map(\.type),
                      costs: nodes.map { costs.cost(of: $0.op, result: $0.type, operands: $0.operands.map { graph[$0].type },
                                                    threads: limits.threads) },
                      operands: operands, order: order, writes: steps.map(\.writes.count), frees: frees,
                      shape: group.shape, rowElements: group.rowElements,
                      bufferBytesPerElement: group.bufferBytesPerElement, writerBytes: group.writerBytes,
                      outputBytes: group.outputBytes, budget: budget, relax: relax, hold: hold, finishers: finishers,
                      relaxed: positions(relaxing))
        if let fit = fits[key] {
            if let assigned = fit.need { need = assigned }
            if let after = fit.relaxed {
                for step in steps { relaxing?.remove(step.value) }
                for i in after { relaxing?.insert(steps[i].value) }
            }
            guard let fitted = fit.group else { return nil }
            var result = group
            result.sweeps = fitted.sweeps
            result.phases = fitted.phases
            result.chunkRows = fitted.chunkRows
            result.finishingThreads = fitted.finishingThreads
            result.retained = fit.retained.map { steps[$0].value }
            result.holding = fit.holding.map { steps[$0].value }
            return result
        }
        let before = need
        let result = direct()
        // (A fit keeps and holds only the group's own values; one that did not would not be served again.)
        let retained = result?.retained.compactMap { position[$0] } ?? []
        let holding = result?.holding.compactMap { position[$0] } ?? []
        if retained.count == result?.retained.count ?? 0, holding.count == result?.holding.count ?? 0 {
            fits[key] = Fit(group: result, retained: retained, holding: holding, need: need != before ? need : nil,
                            relaxed: positions(relaxing))
        }
        return result
    }

    /// `op` without the tensor names it reads (a load's, a LoRA delta's), which do not change a fit.
    private static func anonymous(_ op: Op) -> Op {
        switch op {
        case .load(let model, _): return .load(model: model, tensor: "")
        case .loraDelta(let model, _, _, let rank, let scale, let transposed):
            return .loraDelta(model: model, a: "", b: "", rank: rank, scale: scale, transposed: transposed)
        default: return op
        }
    }
}
