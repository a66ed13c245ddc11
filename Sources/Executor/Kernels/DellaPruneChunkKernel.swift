import Checkpoint
import IR

/// DELLA's MAGPRUNE in streaming form (`DellaRule`): every row lies inside one chunk (chunks are whole slices
/// along dimension 0), so output is computed chunk by chunk, rows in parallel with per-thread rank scratch.
/// With rescaling, one pass first measures the L1 norms: it decides the rows of a group of slices into a
/// keep mask, then folds the group in index order (`L1Rescale`); the output sweep decides the rows again.
final class DellaPruneChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let rule: DellaRule
    private let rescale: L1Rescale
    /// `rows.length` entries of rank scratch per worker.
    private let order: AccountedBuffer<UInt64>
    /// Keep flags of one group of slices (rescaling pass only).
    private var mask: AccountedBuffer<UInt8>?
    /// Elements per group of the rescaling pass: whole slices, about one block per thread.
    private let groupElements: Int

    init(density: Double, epsilon: Double, rescale: Bool, seed: UInt64, key: UInt64, context: KernelContext) {
        self.context = context
        let rows = DellaRows(shape: context.shape)
        rule = DellaRule(rows: rows, rng: Philox4x32(seed: seed), key: key, density: density, epsilon: epsilon)
        self.rescale = L1Rescale(enabled: rescale, context: context)
        let scratch = DellaScratch(shape: context.shape, threads: context.parallel.threads)
        order = context.memory.allocate(UInt64.self, count: scratch.orderEntries)
        groupElements = scratch.groupElements
        mask = rescale ? context.memory.allocate(UInt8.self, count: scratch.maskBytes) : nil
    }

    func beginPass() -> Bool { rescale.needsPass }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        guard let mask else { return }
        let x = operands.global(0), input = SendablePointer(x), rule = self.rule
        let flags = SendablePointer(mask.pointer)
        var start = operands.range.lowerBound
        while start < operands.range.upperBound {
            let group = start..<min(operands.range.upperBound, start + groupElements)
            let offset = group.lowerBound
            forEachRow(rule.rows.rows(in: group), elements: group.count) { row, order in
                rule.decide(row: row, x: input.pointer, order: order) { i, keep in
                    flags.pointer[i - offset] = keep ? 1 : 0
                }
            }
            rescale.add(group, x: x) { i in flags.pointer[i - offset] != 0 }
            start = group.upperBound
        }
    }

    func endPass() throws(ExecutionError) {
        rescale.finish()
        mask = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = operands.shared(output: out)
        let rule = self.rule, factor = rescale.factor, dtype = context.dtype
        forEachRow(rule.rows.rows(in: operands.range), elements: operands.range.count) { row, order in
            let x = p.inputs[0], o = p.output
            rule.decide(row: row, x: x, order: order) { i, keep in
                o[i] = DTypeConversion.round((keep ? x[i] : 0) * factor, to: dtype)
            }
        }
    }

    /// Calls `body(row, scratch)` for every row of `rows` (`elements` elements in all), spread over workers.
    private func forEachRow(_ rows: Range<Int>, elements: Int,
                            _ body: @Sendable (Int, UnsafeMutablePointer<UInt64>) -> Void) {
        let workers = max(1, min(context.parallel.threads, rows.count, elements / 4096 + 1))
        let scratch = SendablePointer(order.pointer), length = rule.rows.length
        context.parallel.forEachRow(in: rows, workers: workers) { w, row in body(row, scratch.pointer + w * length) }
    }
}

extension DellaPruneChunkKernel {
    /// Rank scratch for the whole group; with `rescale`, a pass also holding a group of keep flags and the two
    /// L1 norms' block sums.
    static func cost(rescale: Bool, shape: [Int], threads: Int) -> KernelCost {
        let scratch = DellaScratch(shape: shape, threads: threads)
        let order = scratch.orderEntries * 8
        guard rescale else { return .constant(order) }
        let pass = order + scratch.maskBytes + StreamingSums.bytes(elementCount: shape.reduce(1, *), width: 2)
        return KernelCost(initialBytes: pass, passBytes: [pass], sweepBytes: order)
    }
}
