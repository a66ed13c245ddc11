import Checkpoint
import IR

/// DARE's random pruning (mergekit's `bernoulli`): each element survives with probability `density`, decided by
/// its Philox draw for (seed, stream key, element index) (`RandomMask`), so the mask is the same for any chunking
/// and thread count. Without rescaling it is per element; with it, one pass measures the L1 norms first
/// (`L1Rescale`), keeping the decisions for the output sweep (`KeepBits`). Masks are made 32 elements at a time,
/// eight Philox blocks in SIMD lanes, into a tile of flags that the norms' pass and the output sweep read while it
/// is in the L1 cache. A held operand (`HeldOperand`) is stored masked by the pass, so the sweep only scales it and
/// no decisions are kept beside it.
final class RandomPruneChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let mask: RandomMask
    private let rescale: L1Rescale
    /// The pass's decisions, when kept (`KeepBits.kept`) and the operand is not held (a held one is masked).
    private let kept: KeepBits?
    /// The operand, when the plan lets the kernel hold it (from the pass on).
    private var held: HeldOperand?

    init(density: Double, rescale: Bool, seed: UInt64, key: UInt64, context: KernelContext) {
        self.context = context
        mask = RandomMask(rng: Philox4x32(seed: seed), key: key, density: density)
        self.rescale = L1Rescale(enabled: rescale, context: context)
        kept = KeepBits.kept(rescale: rescale, elementCount: context.elementCount) && !HeldOperand.holds(context)
            ? KeepBits(elementCount: context.elementCount, memory: context.memory) : nil
    }

    func beginPass() -> Bool {
        guard rescale.needsPass else { return false }
        held = held ?? HeldOperand(context: context)
        return true
    }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let mask = self.mask, kept = self.kept, plane = held?.filling, x = SendablePointer(operands.global(0))
        if let plane, mask.draws {
            // Held: each group of 32 draws is applied to the norms and the plane in the loop that makes it.
            return rescale.add(operands.range) { part, acc in mask.fold(x.pointer, part, into: acc, storing: plane) }
        }
        rescale.add(operands.range, x: x.pointer) { part, flags in
            mask.fill(part, into: flags)
            kept?.store(part, from: flags)
            plane?.store(x.pointer, part, keeping: flags)
        }
    }

    func endPass() throws(ExecutionError) {
        rescale.finish()
        held?.endPass()
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        // The held task vector, masked by the pass, is read in place, 2 bytes an element, and scaled.
        if let held { return held.output(factor: rescale.factor, range: operands.range, into: out) }
        if let kept { return context.forEachLaneRoundedBlock(operands, into: out, kept.output(factor: rescale.factor)) }
        context.forEachLaneRoundedBlock(operands, into: out, mask.output(factor: rescale.factor))
    }
}

/// The keep decision of DARE: element `i` is kept when its draw is below `density` in the draw's units:
/// probability `⌈density · 2³²⌉ / 2³²`, within 2⁻³² of `density` (exactly `density` for a bf16-rounded one).
///
/// A decision reads only the bits of a Philox word that its threshold needs (`fieldBits`): 8 when
/// `⌈density · 2³²⌉` is a multiple of 2²⁴ (a density with at most 8 bits after the binary point, as every
/// bf16-rounded density of a bf16 merge is: 0.53 becomes 0.53125 = 17/32), 16 when a multiple of 2¹⁶, else all 32.
/// Element `i` is kept when its field `u` of `fieldBits` bits is below `⌈density · 2³²⌉ / 2^(32 − fieldBits)`, which
/// is `u / 2^fieldBits < density` exactly; the fields of a word are disjoint bits of the generator's output, so the
/// decisions are as independent and uniform as whole words would make them, and a word serves `32 / fieldBits`
/// elements (a quarter of the Philox blocks per element for bf16 merges). Layout, with `f = 32 / fieldBits` fields a
/// word: the elements `32f·g ..< 32f·(g + 1)` come from Philox element group `g` (`Philox4x32.group`), element
/// `32f·g + 8(f·w + b) + lane` being field `b` (bits `fieldBits·b ..<` `fieldBits·(b + 1)`) of word `w` of block
/// `lane`; with `f = 1`, element `i`'s word is `Philox4x32.draw(stream:index:)` of `i`.
struct RandomMask: Sendable {
    let rng: Philox4x32
    let key: UInt64
    /// `⌈density · 2³²⌉`, clamped to 0…2³².
    let threshold: UInt64
    /// Bits of a Philox word one decision reads: 8, 16 or 32 (see above).
    let fieldBits: Int

    init(rng: Philox4x32, key: UInt64, density: Double) {
        self.rng = rng
        self.key = key
        threshold = density <= 0 ? 0 : density >= 1 ? 1 << 32 : min(1 << 32, UInt64((density * 0x1p32).rounded(.up)))
        fieldBits = threshold % (1 << 24) == 0 ? 8 : threshold % (1 << 16) == 0 ? 16 : 32
    }

    /// Elements one Philox element group's draws decide.
    var span: Int { 32 * (32 / fieldBits) }

    /// Whether element `i` is kept (`draws` true).
    func keeps(_ i: Int) -> Bool { keeps(offset: i % span, of: rng.group(UInt64(i / span), stream: key)) }

    /// Whether the element at `offset` (0..<`span`) of the group whose draws are `draws` is kept: field
    /// `offset / 8 mod f` of word `offset / 8f` of lane `offset mod 8`, `f = 32 / fieldBits`.
    @inline(__always)
    private func keeps(offset r: Int, of draws: Philox4x32.Draws) -> Bool {
        let fields = 32 / fieldBits, w = r / (8 * fields), b = r / 8 % fields
        let u = UInt64(draws[8 * w + r % 8]) >> UInt64(fieldBits * b) & (1 << UInt64(fieldBits) - 1)
        return u < threshold >> UInt64(32 - fieldBits)
    }

    /// Whether the decisions need draws: the density is strictly between 0 and 1 (`threshold` between 0 and 2³²).
    var draws: Bool { threshold > 0 && threshold < 1 << 32 }

    /// The decisions of `range` (global indices; `draws` true), in index order: `whole(start, keep)` for each
    /// eight elements `start ..< start + 8` (`start` a multiple of 8) of a Philox element group inside `range`,
    /// `keep` all ones where kept (else zero); `part(e, keeps)` for each element of a group `range` covers only
    /// partly. Two groups' blocks are computed at once where two follow (`Philox4x32.groupPair`).
    @inline(__always)
    func forEachEight(_ range: Range<Int>, whole: (Int, SIMD8<UInt32>) -> Void, part: (Int, Bool) -> Void) {
        switch fieldBits {
        case 8: forEachEight(fields: 4, range, whole: whole, part: part)
        case 16: forEachEight(fields: 2, range, whole: whole, part: part)
        default: forEachEight(fields: 1, range, whole: whole, part: part)
        }
    }

    @inline(__always)
    private func forEachEight(fields: Int, _ range: Range<Int>, whole: (Int, SIMD8<UInt32>) -> Void,
                              part: (Int, Bool) -> Void) {
        let bits = 32 / fields, span = 32 * fields
        let t = SIMD8<UInt32>(repeating: UInt32(threshold >> UInt64(32 - bits)))
        let low = SIMD8<UInt32>(repeating: fields == 1 ? .max : (1 << UInt32(bits)) - 1)
        @inline(__always) func word(_ start: Int, _ w: Int, _ words: SIMD8<UInt32>) {
            for b in 0..<fields {
                whole(start + 8 * (fields * w + b), LaneMask.below(words &>> UInt32(bits * b) & low, t))
            }
        }
        @inline(__always) func emit(_ start: Int, _ draws: Philox4x32.Draws) {
            word(start, 0, draws.words.0)
            word(start, 1, draws.words.1)
            word(start, 2, draws.words.2)
            word(start, 3, draws.words.3)
        }
        var i = range.lowerBound
        while i < range.upperBound {
            let g = i / span, start = g * span
            if i == start, start + 2 * span <= range.upperBound {
                let (first, second) = rng.groupPair(UInt64(g), stream: key)
                emit(start, first)
                emit(start + span, second)
                i = start + 2 * span
            } else if i == start, start + span <= range.upperBound {
                emit(start, rng.group(UInt64(g), stream: key))
                i = start + span
            } else {
                let draws = rng.group(UInt64(g), stream: key)
                let end = min(range.upperBound, start + span)
                for e in i..<end { part(e, keeps(offset: e - start, of: draws)) }
                i = end
            }
        }
    }

    /// The rescaling pass of a held operand over `range` (global indices; `draws` true) in one loop, eight
    /// decisions at a time (`forEachEight`): `|x[i]|` is added to lane `i mod 8` of `acc[0..<8]` and, kept, to lane
    /// `i mod 8` of `acc[8..<16]`, in index order (the sums `L1Rescale.fold` makes from the flags `fill` writes), and
    /// `x[i]` masked is stored into the plane (`HeldOperand.Filling.store(_:_:keeping:)`), with no flags written
    /// between.
    @inline(__always)
    func fold(_ x: UnsafePointer<Float>, _ range: Range<Int>, into acc: UnsafeMutablePointer<Double>,
              storing plane: HeldOperand.Filling) {
        if plane.dtype == .bf16 {
            fold(BF16Rounding.self, x, range, into: acc, storing: plane.plane.pointer)
        } else {
            fold(F16Rounding.self, x, range, into: acc, storing: plane.plane.pointer)
        }
    }

    @inline(__always)
    private func fold<R: HalfLaneRounding>(_: R.Type, _ x: UnsafePointer<Float>, _ range: Range<Int>,
                                           into acc: UnsafeMutablePointer<Double>,
                                           storing plane: UnsafeMutablePointer<UInt16>) {
        var fold = HeldNormsFold<R>(acc, x: x, plane: plane)
        forEachEight(range, whole: { start, keep in fold.eight(start, keep: keep) },
                     part: { e, keeps in fold.one(e, keeps: keeps) })
        fold.finish()
    }

    /// Writes `0xFFFF_FFFF` (kept) or 0 for each element of `range` to `flags[0 ..< range.count]`.
    @inline(__always)
    func fill(_ range: Range<Int>, into flags: UnsafeMutablePointer<UInt32>) {
        if threshold == 0 || threshold == 1 << 32 {
            flags.update(repeating: threshold == 0 ? 0 : .max, count: range.count)
            return
        }
        forEachEight(range, whole: { start, keep in
            UnsafeMutableRawPointer(flags + (start - range.lowerBound)).storeBytes(of: keep, as: SIMD8<UInt32>.self)
        }, part: { e, keeps in flags[e - range.lowerBound] = keeps ? .max : 0 })
    }

    /// `o[i] = R((kept ? x[i] : 0) · factor)` for `i` in `range`: the product in f32, rounded by `R` (the dtype's
    /// lane rounding) in the same loop; `flags[i − range.lowerBound]` (all ones or zero) tells kept.
    @inline(__always)
    static func apply<R: LaneRounding, X: MaskedOperand>(_: R.Type, _ flags: UnsafePointer<UInt32>, _ x: X,
                                                         _ range: Range<Int>, factor: Float,
                                                         into o: UnsafeMutablePointer<Float>) {
        var i = range.lowerBound
        let f = SIMD8<Float>(repeating: factor)
        while i + 8 <= range.upperBound {
            let v = x.bits(i)
            let k = UnsafeRawPointer(flags + (i - range.lowerBound)).loadUnaligned(as: SIMD8<UInt32>.self)
            UnsafeMutableRawPointer(o + i).storeBytes(of: R.round(unsafeBitCast(v & k, to: SIMD8<Float>.self) * f),
                                                      as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            o[i] = R.round((flags[i - range.lowerBound] != 0 ? x[i] : 0) * factor)
            i += 1
        }
    }
}

/// Where a prune's output loop reads its operand `x` (global indices): f32 values (`FloatOperand`) or a held plane
/// of 16-bit values of the merge dtype (`HeldOperand.Plane`).
protocol MaskedOperand: Sendable {
    /// The f32 bit patterns of `x[i ..< i + 8]`.
    func bits(_ i: Int) -> SIMD8<UInt32>
    /// `x[i]`.
    subscript(_ i: Int) -> Float { get }
}

/// An operand of f32 values, indexed by global element index.
struct FloatOperand: MaskedOperand, @unchecked Sendable {
    let x: UnsafePointer<Float>

    @inline(__always) func bits(_ i: Int) -> SIMD8<UInt32> { UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<UInt32>.self) }
    @inline(__always) subscript(_ i: Int) -> Float { x[i] }
}

/// Keep decisions a prune's output sweep applies: `o[i] = R((kept ? x[i] : 0) · factor)` for `i` in `range`
/// (global indices), rounded by `R` in the loop that computes (`RandomMask` draws them, `KeepBits` reads them back).
protocol KeepDecisions: Sendable {
    func apply<R: LaneRounding, X: MaskedOperand>(_: R.Type, _ x: X, _ range: Range<Int>, factor: Float,
                                                  into o: UnsafeMutablePointer<Float>)
}

extension KeepDecisions {
    /// The masked output `(kept ? x[i] : 0) · factor` (operand 0 is `x`) as a loop for
    /// `KernelContext.forEachLaneRoundedBlock`.
    func output(factor: Float) -> some LaneRoundedLoop { MaskedOutput(decisions: self, factor: factor) }
}

/// `KeepDecisions.output(factor:)`.
private struct MaskedOutput<Decisions: KeepDecisions>: LaneRoundedLoop {
    let decisions: Decisions
    let factor: Float

    func run<R: LaneRounding>(_: R.Type, _ p: SharedPointers, _ range: Range<Int>) {
        decisions.apply(R.self, FloatOperand(x: p.inputs[0]), range, factor: factor, into: p.output)
    }
}

extension RandomMask: KeepDecisions {
    /// Draws the decisions a tile of at most `L1Rescale.tile` elements at a time (`fill`) and applies them in the
    /// loop that rounds (`apply(_:_:_:_:factor:into:)` on the tile's flags).
    func apply<R: LaneRounding, X: MaskedOperand>(_: R.Type, _ x: X, _ range: Range<Int>, factor: Float,
                                                  into o: UnsafeMutablePointer<Float>) {
        L1Rescale.forEachTile(of: range) { part, tile in
            fill(part, into: tile)
            RandomMask.apply(R.self, tile, x, part, factor: factor, into: o)
        }
    }
}

extension KeepBits: KeepDecisions {}

extension RandomPruneChunkKernel {
    /// With `rescale`, the two L1 norms' lane sums for one pass and the kept decisions through the sweep
    /// (`KeepBits`); nothing otherwise.
    static func cost(rescale: Bool, elementCount n: Int) -> KernelCost {
        guard rescale else { return KernelCost() }
        let bits = KeepBits.kept(rescale: rescale, elementCount: n) ? KeepBits.bytes(elementCount: n) : 0
        let sums = L1Rescale.bytes(elementCount: n)
        return KernelCost(initialBytes: sums + bits, passBytes: [sums + bits], sweepBytes: bits)
    }

    /// `cost(rescale:elementCount:)` with the offer to hold the operand (`HeldOperand`) when it is of the merge
    /// dtype `result`, bf16 or f16. Held, the plane is masked by the pass and replaces the kept decisions: the pass
    /// holds the norms' sums and the plane, the sweep the plane alone.
    static func declaredCost(rescale: Bool, elementCount n: Int, operand: DType, result: DType) -> KernelCost {
        var offer = cost(rescale: rescale, elementCount: n)
            .offeringToHold(operand: operand, result: result, elementCount: n)
        if var holding = offer.holding {
            let plane = HeldOperand.bytes(elementCount: n)
            holding.passBytes = [L1Rescale.bytes(elementCount: n) + plane]
            holding.sweepBytes = plane
            offer.holding = holding
        }
        return offer
    }
}
