import Checkpoint
import IR

/// Magnitude pruning in streaming form (TIES, breadcrumbs): keeps the elements whose ascending rank by |x| lies in
/// `keep` and zeroes the rest; with `rescale`, scales the kept part to the operand's L1 norm unless either norm is
/// below 1e-7 (mergekit's rule).
///
/// With `.index` ties (equal magnitudes ranked by index), the passes are the two of a `StreamingSelect` finding the
/// magnitudes at the first and last kept rank (none when everything is kept; one when the operand is bf16, whose
/// magnitudes' low 16 bits are zero). With PyTorch's ties (`.torchDescending`, `.torchAscending`: mergekit's
/// `torch.argsort`/`torch.sort` of `|x|` as f32), one pass gathers the whole tensor into a `TieCut` (4 bytes per
/// element for a bf16 operand, else 8; a held bf16 operand's cut only counts its keys and takes the 4 bytes in
/// `finishPass`, `TieCut.deferred`), which replays PyTorch's sort at the pass's end (in `finishPass`, beside the
/// other kernels of the sweep) and keeps a bit per element for the output sweep. Either way, with `rescale`, a last pass measures the L1 norms of the operand and of
/// its kept part.
final class MagnitudePruneChunkKernel: ChunkKernel {
    /// What the next statistics pass computes.
    private enum Stage {
        case gather, selectHigh, selectLow, norms, done
    }

    private let context: KernelContext
    private let keep: Range<Int>
    private let rescale: Bool
    private let ties: TieOrder
    private var stage: Stage
    private var select: StreamingSelect?
    /// PyTorch ties: the cut, gathered, decided, then asked.
    private var cut: TieCut?
    /// PyTorch ties: the operand, when the plan lets the kernel hold it (from the gathering pass on).
    private var held: HeldOperand?
    /// Index ties: the kept elements, once known (nil: none).
    private var selection: OrderedKeep?
    private var norms: StreamingSums?
    /// The rescaling factor (`L1Rescale`'s rule), once the norms are measured.
    private var factor: Float?

    /// A kernel keeping ascending ranks `keep` (clamped to the tensor) with `ties` deciding among equal magnitudes.
    init(keep: Range<Int>, rescale: Bool, ties: TieOrder, context: KernelContext) {
        self.context = context
        self.rescale = rescale
        self.ties = ties
        let n = context.elementCount
        self.keep = MagnitudePruneChunkKernel.clamped(keep, elementCount: n)
        if self.keep.isEmpty {
            stage = .done
        } else if self.keep.count == n {
            selection = OrderedKeep(rule: .all, elementCount: n, memory: context.memory)
            stage = rescale ? .norms : .done
        } else if MagnitudePruneChunkKernel.replays(keep: self.keep, ties: ties, elementCount: n) {
            stage = .gather
        } else {
            select = StreamingSelect(elementCount: n, threads: context.parallel.threads, memory: context.memory)
            stage = .selectHigh
        }
    }

    func beginPass() -> Bool {
        switch stage {
        case .gather:
            // The mask too, so that every kernel of a sweep holds its whole declared state at once.
            // Holding the operand as bf16, the cut defers its entries to its replay (`TieCut.deferred`).
            held = HeldOperand(context: context)
            cut = TieCut(keep: keep, descending: ties == .torchDescending, elementCount: context.elementCount,
                         operand: context.operandDTypes.first ?? .f32, threads: context.parallel.threads,
                         memory: context.memory,
                         deferred: TieCut.defers(operand: context.operandDTypes.first ?? .f32,
                                                 held: held == nil ? nil : context.dtype, elementCount: context.elementCount),
                         finishCounted: false)
            return true
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
        case .gather:
            cut?.gather(keys.x, operands.range, parallel: context.parallel, filling: held?.filling)
        case .selectHigh, .selectLow:
            select?.count(operands.range, keys, parallel: context.parallel)
        case .norms:
            if let cut, let norms {
                let bits = SendablePointer(UnsafePointer(cut.kept.pointer)), test = cut.test
                norms.add(operands.range, parallel: context.parallel) { range, acc in
                    let x = keys.x, bits = bits.pointer
                    var all = acc[0], keptSum = acc[1]
                    for i in range {
                        let magnitude = abs(x[i])
                        all += Double(magnitude)
                        keptSum += Double(Float(bitPattern: magnitude.bitPattern & test.mask(x[i], bits, i)))
                    }
                    acc[0] = all
                    acc[1] = keptSum
                }
                return
            }
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

    /// PyTorch ties: replays the sort and marks the kept elements (single-threaded; the runner runs the kernels of
    /// a sweep side by side): the sort's first partition here, the rest in the returned continuation.
    func finishPass() -> PassContinuation? {
        guard stage == .gather, let cut else { return nil }
        return cut.decide()
    }

    /// A deferred cut takes its entries while it decides (`TieCut.finishBytes`), uncounted: the runner reserves them.
    var finishBytes: Int {
        stage == .gather && cut?.deferred == true ? TieCut.finishBytes(elementCount: context.elementCount) : 0
    }

    func endPass() throws(ExecutionError) {
        switch stage {
        case .gather:
            cut?.endPass()
            held?.endPass()
            stage = rescale ? .norms : .done
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
        if let cut {
            produceMarked(operands, cut: cut, into: out)
            return
        }
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
    /// PyTorch ties' output: x where the cut keeps the element, +0 elsewhere, then rescaled and rounded as `produce`.
    /// A held operand is read in place from its plane (`HeldOperand.reading`).
    private func produceMarked(_ operands: ChunkOperands, cut: TieCut, into out: UnsafeMutablePointer<Float>) {
        let range = operands.range
        let o = SendablePointer(out - range.lowerBound), bits = SendablePointer(UnsafePointer(cut.kept.pointer))
        let test = cut.test
        let dtype = context.dtype, factor = self.factor
        let exact = factor == nil && (dtype == .f32 || context.operandDTypes.first == dtype)
        // A bf16 plane (`plane`) is masked sixteen elements at a time in C where the processor can (`applyBF16`).
        func run<X: MaskedOperand>(_ x: X, plane: SendablePointer<UnsafePointer<UInt16>>? = nil) {
            context.parallel.forEachAlignedBlock(in: range) { _, part in
                let out = o.pointer, bits = bits.pointer
                if let plane { test.applyBF16(plane.pointer, bits, part, into: out) } else { test.apply(x, bits, part, into: out) }
                if let factor { for i in part { out[i] *= factor } }
                if !exact { DTypeConversion.roundInPlace(out + part.lowerBound, count: part.count, to: dtype) }
            }
        }
        if let held {
            held.reading(bf16: { run($0, plane: SendablePointer($0.p)) }, f16: { run($0) })
        } else {
            run(FloatOperand(x: operands.global(0)))
        }
    }

    /// `keep` clamped to the ranks of a tensor of `elementCount` elements.
    static func clamped(_ keep: Range<Int>, elementCount n: Int) -> Range<Int> {
        max(0, keep.lowerBound)..<max(max(0, keep.lowerBound), min(n, keep.upperBound))
    }

    /// Whether the kernel replays PyTorch's sort: PyTorch ties on a tensor the replay handles, keeping some but not
    /// all elements (clamped `keep`); otherwise equal magnitudes cannot straddle a cut.
    static func replays(keep: Range<Int>, ties: TieOrder, elementCount n: Int) -> Bool {
        ties.isTorch && !keep.isEmpty && keep.count < n && n <= TorchArgsortReplay.maxElementCount
    }

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
struct MagnitudeKeys: VectorOrderKeys, @unchecked Sendable {
    /// The operand, indexed by global element index.
    let x: UnsafePointer<Float>

    @inline(__always)
    func forEach(_ range: Range<Int>, _ body: (Int, UInt32) -> Void) {
        for i in range { body(i, MagnitudeRank.key(x[i])) }
    }

    @inline(__always)
    func keys8(_ i: Int) -> SIMD8<UInt32> {
        UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<UInt32>.self) & 0x7FFF_FFFF
    }
}

extension MagnitudePruneChunkKernel {
    /// `cost(…)` with, when the kernel replays PyTorch's sort, the offer to hold its operand (`HeldOperand`) when
    /// the operand is of the merge dtype `result`, bf16 or f16: held, a bf16 operand's cut is deferred
    /// (`TieCut.deferred`): its gathering pass holds the plane, the `kept` mask and the keys' counts, and its
    /// entries (`TieCut.finishBytes`) only while it decides.
    static func declaredCost(keep: Range<Int>, rescale: Bool, ties: TieOrder, elementCount n: Int, operand: DType,
                             result: DType, threads: Int) -> KernelCost {
        let cost = self.cost(keep: keep, rescale: rescale, ties: ties, elementCount: n, operand: operand, threads: threads)
        guard replays(keep: clamped(keep, elementCount: n), ties: ties, elementCount: n) else { return cost }
        var offer = cost.offeringToHold(operand: operand, result: result, elementCount: n)
        if TieCut.defers(operand: operand, held: result, elementCount: n), var holding = offer.holding {
            holding.passBytes[0] = TieCut.deferredPassBytes(elementCount: n, threads: threads)
                + HeldOperand.bytes(elementCount: n)
            holding.finishBytes = [TieCut.finishBytes(elementCount: n)]
            offer.holding = holding
        }
        return offer
    }

    /// What the kernel holds for a tensor of `n` elements whose operand is `operand` on `threads` threads.
    /// Index ties: the selection tables of its one (bf16 operand) or two selection passes, then the kept-element
    /// positions. PyTorch ties: during the gathering pass, `TieCut.passBytes` (4 bytes per element and two masks
    /// for a bf16 operand, else 8 bytes per element and the mask); the kept-mask (a bit per element, in 64-bit
    /// words) alone stays for the sweep. With
    /// `rescale`, a last pass holds the positions or the mask and the two L1 norms' block sums.
    static func cost(keep: Range<Int>, rescale: Bool, ties: TieOrder, elementCount n: Int, operand: DType,
                     threads: Int) -> KernelCost {
        let kept = clamped(keep, elementCount: n)
        guard !kept.isEmpty else { return KernelCost() }
        if replays(keep: kept, ties: ties, elementCount: n) {
            let mask = TieCut.maskWords(elementCount: n) * 8
            let norms = rescale ? [mask + StreamingSums.bytes(elementCount: n, width: 2)] : []
            return KernelCost(passBytes: [TieCut.passBytes(operand: operand, elementCount: n, threads: threads)] + norms,
                              sweepBytes: mask)
        }
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

