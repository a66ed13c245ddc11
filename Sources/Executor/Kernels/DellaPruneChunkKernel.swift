import Checkpoint
import IR

/// DELLA's MAGPRUNE in streaming form (`DellaRule`): every row lies inside one chunk (chunks are whole slices
/// along dimension 0), so output is computed chunk by chunk, rows in parallel with per-thread rank scratch.
/// With rescaling, one pass first measures the L1 norms: it decides the rows of a group of slices into a
/// keep mask, then folds the group (`L1Rescale`), keeping the decisions (`KeepBits`) so that the output sweep only
/// applies them; a tensor too large to keep them has its rows decided again in the sweep. A held operand
/// (`HeldOperand`) is stored masked by the pass instead, so the sweep only scales it: no decisions are kept beside
/// it, and none are made again; its pass folds the norms and stores the plane from the byte flags in one loop.
final class DellaPruneChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let rule: DellaRule
    private let rescale: L1Rescale
    /// `DellaScratch.rowWords` words of row scratch per worker.
    private var scratch: AccountedBuffer<UInt32>?
    private let rowWords: Int
    /// The pass's decisions, when kept (`KeepBits.kept`) and the operand is not held (a held one is masked); the
    /// row scratch is freed after the pass then, and when the operand is held.
    private let kept: KeepBits?
    /// Keep flags of one group of slices (rescaling pass only).
    private var mask: AccountedBuffer<UInt8>?
    /// Elements per group of the rescaling pass: whole slices, about one block per thread.
    private let groupElements: Int
    /// The operand, when the plan lets the kernel hold it (from the pass on).
    private var held: HeldOperand?

    init(density: Double, epsilon: Double, rescale: Bool, seed: UInt64, key: UInt64, context: KernelContext) {
        self.context = context
        let rows = DellaRows(shape: context.shape)
        rule = DellaRule(rows: rows, rng: Philox4x32(seed: seed), key: key, density: density, epsilon: epsilon)
        self.rescale = L1Rescale(enabled: rescale, context: context)
        let layout = DellaScratch(shape: context.shape, threads: context.parallel.threads)
        scratch = context.memory.allocate(UInt32.self, count: layout.words, zeroed: false)
        rowWords = layout.rowWords
        groupElements = layout.groupElements
        mask = rescale ? context.memory.allocate(UInt8.self, count: layout.maskBytes, zeroed: false) : nil
        kept = KeepBits.kept(rescale: rescale, elementCount: context.elementCount) && !HeldOperand.holds(context)
            ? KeepBits(elementCount: context.elementCount, memory: context.memory) : nil
    }

    func beginPass() -> Bool {
        guard rescale.needsPass else { return false }
        held = held ?? HeldOperand(context: context)
        return true
    }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        guard let mask else { return }
        let x = operands.global(0), input = SendablePointer(x), rule = self.rule
        let flags = SendablePointer(mask.pointer), kept = self.kept, plane = held?.filling
        var start = operands.range.lowerBound
        while start < operands.range.upperBound {
            let group = start..<min(operands.range.upperBound, start + groupElements)
            let offset = group.lowerBound
            forEachRow(rule.rows.rows(in: group), elements: group.count) { row, scratch in
                rule.decide(row: row, x: input.pointer, scratch: scratch) { i, keep in
                    flags.pointer[i - offset] = keep ? 1 : 0
                }
            }
            if let plane {
                // Held: the norms are folded and the plane stored from the group's byte flags in one loop.
                rescale.add(group) { block, acc in
                    Self.fold(input.pointer, block, flags: flags.pointer + (block.lowerBound - offset), into: acc,
                              storing: plane)
                }
                start = group.upperBound
                continue
            }
            rescale.add(group, x: x) { part, tile in
                let source = flags.pointer + (part.lowerBound - offset)
                for k in 0..<part.count { tile[k] = source[k] != 0 ? .max : 0 }
                kept?.store(part, from: tile)
            }
            start = group.upperBound
        }
    }

    func endPass() throws(ExecutionError) {
        rescale.finish()
        held?.endPass()
        mask = nil
        if kept != nil || held != nil { scratch = nil }
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        // A held operand, masked by the pass, is read in place and scaled; kept decisions are applied to the
        // operand; else the rows are decided again.
        if let held { return held.output(factor: rescale.factor, range: operands.range, into: out) }
        if let kept { return context.forEachLaneRoundedBlock(operands, into: out, kept.output(factor: rescale.factor)) }
        let p = operands.shared(output: out)
        let rule = self.rule, factor = rescale.factor, dtype = context.dtype
        forEachRow(rule.rows.rows(in: operands.range), elements: operands.range.count) { row, scratch in
            let x = p.inputs[0], o = p.output
            rule.decide(row: row, x: x, scratch: scratch) { i, keep in o[i] = (keep ? x[i] : 0) * factor }
            let rows = rule.rows, start = rows.start(of: row)
            if rows.inner == 1 {
                DTypeConversion.roundInPlace(o + start, count: rows.length, to: dtype)
            } else {
                for k in 0..<rows.length {
                    o[start + k * rows.inner] = DTypeConversion.round(o[start + k * rows.inner], to: dtype)
                }
            }
        }
    }

    /// The rescaling pass of a held operand over the block `range` (global indices) in one loop, from the group's
    /// keep flags `flags[i − range.lowerBound]` (1 kept, 0 dropped): `|x[i]|` is added to lane `i mod 8` of
    /// `acc[0..<8]` and, kept, to lane `i mod 8` of `acc[8..<16]`, in index order (the sums `L1Rescale.fold` makes
    /// from the flags as a tile), and `x[i]` masked is stored into the plane
    /// (`HeldOperand.Filling.store(_:_:keeping:)`).
    @inline(__always)
    private static func fold(_ x: UnsafePointer<Float>, _ range: Range<Int>, flags: UnsafePointer<UInt8>,
                             into acc: UnsafeMutablePointer<Double>, storing plane: HeldOperand.Filling) {
        if plane.dtype == .bf16 {
            fold(BF16Rounding.self, x, range, flags: flags, into: acc, storing: plane.plane.pointer)
        } else {
            fold(F16Rounding.self, x, range, flags: flags, into: acc, storing: plane.plane.pointer)
        }
    }

    @inline(__always)
    private static func fold<R: HalfLaneRounding>(_: R.Type, _ x: UnsafePointer<Float>, _ range: Range<Int>,
                                                  flags f: UnsafePointer<UInt8>, into acc: UnsafeMutablePointer<Double>,
                                                  storing plane: UnsafeMutablePointer<UInt16>) {
        var fold = HeldNormsFold<R>(acc, x: x, plane: plane)
        let flags = f - range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound, i & 7 != 0 {
            fold.one(i, keeps: flags[i] != 0)
            i += 1
        }
        // Eight byte flags (0 or 1) become lane masks: each 32-bit half broadcast, shifted to its byte, negated.
        let shifts = SIMD8<UInt32>(0, 8, 16, 24, 0, 8, 16, 24)
        while i + 8 <= range.upperBound {
            let word = UnsafeRawPointer(flags + i).loadUnaligned(as: UInt64.self).littleEndian
            let low = UInt32(truncatingIfNeeded: word), high = UInt32(truncatingIfNeeded: word >> 32)
            let halves = SIMD8<UInt32>(low, low, low, low, high, high, high, high)
            fold.eight(i, keep: SIMD8<UInt32>() &- ((halves &>> shifts) & 1))
            i += 8
        }
        while i < range.upperBound {
            fold.one(i, keeps: flags[i] != 0)
            i += 1
        }
        fold.finish()
    }

    /// Calls `body(row, scratch)` for every row of `rows` (`elements` elements in all), spread over workers.
    private func forEachRow(_ rows: Range<Int>, elements: Int,
                            _ body: @Sendable (Int, UnsafeMutablePointer<UInt32>) -> Void) {
        let workers = max(1, min(context.parallel.threads, rows.count, elements / 4096 + 1))
        let scratch = SendablePointer(scratch!.pointer), length = rowWords
        context.parallel.forEachRow(in: rows, workers: workers) { w, row in body(row, scratch.pointer + w * length) }
    }
}

extension DellaPruneChunkKernel {
    /// Row scratch for the whole group; with `rescale`, a pass also holding a group of keep flags, the two L1 norms'
    /// lane sums and the kept decisions, which replace the row scratch in the sweep (`KeepBits`).
    static func cost(rescale: Bool, shape: [Int], threads: Int) -> KernelCost {
        let scratch = DellaScratch(shape: shape, threads: threads)
        let rows = scratch.words * 4, n = shape.reduce(1, *)
        guard rescale else { return .constant(rows) }
        let bits = KeepBits.kept(rescale: rescale, elementCount: n) ? KeepBits.bytes(elementCount: n) : 0
        let pass = rows + scratch.maskBytes + L1Rescale.bytes(elementCount: n) + bits
        return KernelCost(initialBytes: pass, passBytes: [pass], sweepBytes: bits > 0 ? bits : rows)
    }

    /// `cost(rescale:shape:threads:)` with the offer to hold the operand (`HeldOperand`) when it is of the merge
    /// dtype `result`, bf16 or f16. Held, the plane is masked by the pass and replaces the kept decisions and the
    /// row scratch of the sweep: the pass holds the row scratch, a group's flags, the norms' sums and the plane, the
    /// sweep the plane alone.
    static func declaredCost(rescale: Bool, shape: [Int], threads: Int, operand: DType, result: DType) -> KernelCost {
        let n = shape.reduce(1, *)
        var offer = cost(rescale: rescale, shape: shape, threads: threads)
            .offeringToHold(operand: operand, result: result, elementCount: n)
        if var holding = offer.holding {
            let scratch = DellaScratch(shape: shape, threads: threads), plane = HeldOperand.bytes(elementCount: n)
            holding.passBytes = [scratch.words * 4 + scratch.maskBytes + L1Rescale.bytes(elementCount: n) + plane]
            holding.sweepBytes = plane
            offer.holding = holding
        }
        return offer
    }
}
