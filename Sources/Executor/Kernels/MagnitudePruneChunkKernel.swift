import Checkpoint
import IR

/// Magnitude pruning in streaming form (TIES, breadcrumbs): keeps the elements whose ascending rank by |x| (equal
/// magnitudes ranked by index) lies in `keep` and zeroes the rest; with `rescale`, scales the kept part to the
/// operand's L1 norm unless either norm is below 1e-7 (mergekit's rule). Passes: the two of a `StreamingSelect`
/// finding the magnitudes at the first and last kept rank (none when everything is kept; one when the operand is
/// bf16, whose magnitudes' low 16 bits are zero), then, with `rescale`, one for the L1 norms of the operand and
/// of its kept part.
final class MagnitudePruneChunkKernel: ChunkKernel {
    /// What the next statistics pass computes.
    private enum Stage {
        case selectHigh, selectLow, norms, done
    }

    private let context: KernelContext
    private let keep: Range<Int>
    private let rescale: Bool
    private var stage: Stage
    private var select: StreamingSelect?
    /// The kept elements, once known (nil: none).
    private var selection: OrderedKeep?
    private var norms: StreamingSums?
    /// The rescaling factor (`L1Rescale`'s rule), once the norms are measured.
    private var factor: Float?

    init(keep: Range<Int>, rescale: Bool, context: KernelContext) {
        self.context = context
        self.rescale = rescale
        let n = context.elementCount
        self.keep = max(0, keep.lowerBound)..<max(max(0, keep.lowerBound), min(n, keep.upperBound))
        if self.keep.isEmpty {
            stage = .done
        } else if self.keep.count == n {
            selection = OrderedKeep(rule: .all, elementCount: n, memory: context.memory)
            stage = rescale ? .norms : .done
        } else {
            select = StreamingSelect(elementCount: n, threads: context.parallel.threads, memory: context.memory)
            stage = .selectHigh
        }
    }

    func beginPass() -> Bool {
        switch stage {
        case .selectHigh, .selectLow:
            return true
        case .norms:
            selection?.restart()
            norms = StreamingSums(elementCount: context.elementCount, width: 2, memory: context.memory)
            return true
        case .done:
            return false
        }
    }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let keys = MagnitudeKeys(x: operands.global(0))
        switch stage {
        case .selectHigh, .selectLow:
            select?.count(operands.range, keys, parallel: context.parallel)
        case .norms:
            guard let selection, let norms else { return }
            selection.scan(operands.range, keys, parallel: context.parallel)
            norms.add(operands.range, parallel: context.parallel) { range, acc in
                let x = keys.x
                var cursor = selection.cursor(at: range.lowerBound)
                var all = acc[0], kept = acc[1]
                for i in range {
                    let magnitude = abs(x[i])
                    all += Double(magnitude)
                    // Adds +0 for the elements not kept, without a branch.
                    kept += Double(Float(bitPattern: magnitude.bitPattern & cursor.mask(MagnitudeRank.key(x[i]))))
                }
                acc[0] = all
                acc[1] = kept
            }
        case .done:
            return
        }
    }

    func endPass() throws(ExecutionError) {
        switch stage {
        case .selectHigh:
            select?.finishFirstPass()
            let ranks = [keep.lowerBound, keep.upperBound - 1]
            if context.operandDTypes.first == .bf16 {
                select(select?.statisticsFromFirstPass(ranks: ranks) ?? [])
            } else {
                select?.beginSecondPass(ranks: ranks)
                stage = .selectLow
            }
        case .selectLow:
            select(select?.finishSecondPass() ?? [])
        case .norms:
            let totals = norms?.totals() ?? []
            norms = nil
            if totals.count == 2 { factor = L1Rescale.factor(norms: totals) }
            stage = .done
        case .done:
            return
        }
    }

    /// Takes the boundary statistics: the selection is known, the norms pass comes next if rescaling.
    private func select(_ stats: [StreamingSelect.Statistic]) {
        select = nil
        if stats.count == 2 {
            selection = OrderedKeep(rule: rule(first: stats[0], last: stats[1]), elementCount: context.elementCount,
                                    memory: context.memory)
        }
        stage = rescale ? .norms : .done
    }

    /// Keys between the boundary magnitudes, and of those equal to one, in index order: all but the first
    /// `keep.lowerBound − first.countLess` equal to the lower; the first `keep.upperBound − last.countLess` equal
    /// to the upper.
    private func rule(first: StreamingSelect.Statistic, last: StreamingSelect.Statistic) -> KeepRule {
        let skip = keep.lowerBound - first.countLess
        let take = keep.upperBound - last.countLess
        return KeepRule(low: first.key, lowWindow: skip == 0 ? KeepRule.everything : skip..<Int.max,
                        high: last.key, highWindow: take >= last.countEqual ? KeepRule.everything : 0..<take)
    }

    func beginSweep() { selection?.restart() }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        guard let selection else {
            out.initialize(repeating: 0, count: operands.range.count)
            return
        }
        let keys = MagnitudeKeys(x: operands.global(0)), range = operands.range
        let o = SendablePointer(out - range.lowerBound)
        let dtype = context.dtype, factor = self.factor
        // Kept values of an operand of the output's dtype need no rounding unless they are rescaled.
        let exact = factor == nil && (dtype == .f32 || context.operandDTypes.first == dtype)
        @Sendable func finish(_ part: Range<Int>) {
            if let factor { for i in part { o.pointer[i] *= factor } }
            if !exact { DTypeConversion.roundInPlace(o.pointer + part.lowerBound, count: part.count, to: dtype) }
        }
        // x from the lower boundary key to the upper, both included, +0 elsewhere (a loop without branches),
        // counting the boundary-equal elements of each block...
        let rule = selection.rule, countsPositions = selection.countsPositions
        context.parallel.forEachAlignedBlock(in: range) { _, part in
            let x = keys.x, out = o.pointer
            var lows: UInt32 = 0, highs: UInt32 = 0
            for i in part {
                let key = MagnitudeRank.key(x[i])
                lows &+= key == rule.low ? 1 : 0
                highs &+= key == rule.high ? 1 : 0
                out[i] = Float(bitPattern: x[i].bitPattern & rule.inclusiveMask(key))
            }
            if countsPositions { selection.record(part, low: Int(lows), high: Int(highs)) } else { finish(part) }
        }
        guard countsPositions else { return }
        // ...then, from their positions, +0 for the boundary-equal elements outside their boundary's window.
        selection.advance(range)
        context.parallel.forEachAlignedBlock(in: range) { _, part in
            let (lows, highs) = selection.counts(of: part, in: range)
            MagnitudePruneChunkKernel.dropTies(keys.x, o.pointer, part, selection.cursor(at: part.lowerBound),
                                               lowCount: lows, highCount: highs)
            finish(part)
        }
    }
}

extension MagnitudePruneChunkKernel {
    /// Sets to +0 the elements of `range` whose magnitude equals a boundary key but whose position among those
    /// (from `cursor` on, in index order) lies outside that boundary's window. Only the block holding a window's
    /// edge goes element by element; elsewhere a boundary's equal elements are all kept or all dropped.
    static func dropTies(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                         _ cursor: KeepCursor, lowCount: Int, highCount: Int) {
        let rule = cursor.rule
        switch cursor.fate(lowCount: lowCount, highCount: highCount) {
        case .kept:
            return
        case .dropped(let low, let high):
            for i in range {
                let key = MagnitudeRank.key(x[i])
                let drop = (low && key == rule.low) || (high && key == rule.high)
                out[i] = Float(bitPattern: out[i].bitPattern & (drop ? 0 : .max))
            }
        case .mixed:
            var cursor = cursor
            for i in range where rule.isBoundary(MagnitudeRank.key(x[i])) {
                if !cursor.keeps(MagnitudeRank.key(x[i])) { out[i] = 0 }
            }
        }
    }
}

/// Magnitude order keys: |x|'s bits.
struct MagnitudeKeys: OrderKeys, @unchecked Sendable {
    /// The operand, indexed by global element index.
    let x: UnsafePointer<Float>

    @inline(__always)
    func forEach(_ range: Range<Int>, _ body: (Int, UInt32) -> Void) {
        for i in range { body(i, MagnitudeRank.key(x[i])) }
    }
}

extension MagnitudePruneChunkKernel {
    /// What the kernel holds for a tensor of `n` elements whose operand is `operand` on `threads` threads:
    /// the selection tables of its one (bf16 operand) or two selection passes, then the kept-element positions;
    /// with `rescale`, a pass holding those positions and the two L1 norms' block sums.
    static func cost(keep: Range<Int>, rescale: Bool, elementCount n: Int, operand: DType, threads: Int) -> KernelCost {
        let kept = max(0, keep.lowerBound)..<max(max(0, keep.lowerBound), min(n, keep.upperBound))
        guard !kept.isEmpty else { return KernelCost() }
        let positions = OrderedKeep.bytes(elementCount: n)
        let norms = rescale ? [positions + StreamingSums.bytes(elementCount: n, width: 2)] : []
        if kept.count == n {
            return KernelCost(initialBytes: positions, passBytes: norms, sweepBytes: positions)
        }
        var passes = [StreamingSelect.tableBytes(elementCount: n, threads: threads, slots: 1)]
        if operand != .bf16 { passes.append(StreamingSelect.tableBytes(elementCount: n, threads: threads, slots: 2)) }
        return KernelCost(passBytes: passes + norms, sweepBytes: positions)
    }
}
