/// mergekit's optional L1 rescaling of a pruned tensor in streaming form: one pass summing `|x|` and `|kept|` in
/// f64, then the kept elements are multiplied by `Float(‖x‖₁ / ‖kept‖₁)` in f32 — unless either norm is below
/// 1e-7, when they stay as they are.
///
/// The sums are folded eight lanes wide: within each fixed block of `Parallel.blockSize` elements (`StreamingSums`),
/// element `i` goes to lane `i mod 8`, each lane in index order; a norm is the sum over lanes 0…7, in lane order, of
/// the lane's block partials added in block order. The order depends on element indices only, so the factor is the
/// same for any chunking and thread count.
final class L1Rescale {
    private var sums: StreamingSums?
    private let parallel: Parallel
    /// The f32 factor of kept elements: 1 until the pass is done, when not rescaling, or when a norm vanishes.
    private(set) var factor: Float = 1

    /// The sums' width: eight lanes of `|x|`, then eight of `|kept|`.
    static let width = 16
    /// Elements whose keep flags are asked for at a time.
    static let tile = 4096

    /// A rescale that needs its pass when `enabled` (its sums are counted in `context.memory`).
    init(enabled: Bool, context: KernelContext) {
        parallel = context.parallel
        sums = enabled ? StreamingSums(elementCount: context.elementCount, width: Self.width, memory: context.memory) : nil
    }

    /// Bytes the sums of a tensor of `elementCount` elements hold.
    static func bytes(elementCount: Int) -> Int { StreamingSums.bytes(elementCount: elementCount, width: width) }

    /// Whether the norms still have to be measured.
    var needsPass: Bool { sums != nil }

    /// Folds elements `range` (global indices): `x` is the input; `keep(part, flags)` writes `0xFFFF_FFFF` (kept)
    /// or 0 for each element of `part` (at most `tile` elements) to `flags[0 ..< part.count]`.
    func add(_ range: Range<Int>, x: UnsafePointer<Float>,
             keep: @Sendable (Range<Int>, UnsafeMutablePointer<UInt32>) -> Void) {
        let input = SendablePointer(x)
        sums?.add(range, parallel: parallel) { r, acc in
            Self.forEachTile(of: r) { part, flags in
                keep(part, flags)
                Self.fold(input.pointer, part, flags: flags, into: acc)
            }
        }
    }

    /// Folds elements `range` (global indices) with `fold(block, acc)`, which folds one block itself as `fold` would:
    /// `|x[i]|` into lane `i mod 8` of `acc[0..<8]`, the kept ones into `acc[8..<16]`, in index order. For a
    /// kernel that decides and folds in one loop (`RandomMask.fold(_:_:into:storing:)`).
    func add(_ range: Range<Int>, folding fold: @Sendable (Range<Int>, UnsafeMutablePointer<Double>) -> Void) {
        sums?.add(range, parallel: parallel, fold)
    }

    /// Calls `body(part, flags)` for consecutive parts of `range` of at most `tile` elements, in order, with room
    /// for `tile` flags (on the stack).
    @inline(__always)
    static func forEachTile(of range: Range<Int>, _ body: (Range<Int>, UnsafeMutablePointer<UInt32>) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: tile) { buffer in
            var start = range.lowerBound
            while start < range.upperBound {
                let part = start..<min(range.upperBound, start + tile)
                body(part, buffer.baseAddress!)
                start = part.upperBound
            }
        }
    }

    /// Adds `|x[i]|` to lane `i mod 8` of `acc[0..<8]` and, where `flags[i − range.lowerBound]` is nonzero, to lane
    /// `i mod 8` of `acc[8..<16]`, in index order.
    @inline(__always)
    static func fold(_ x: UnsafePointer<Float>, _ range: Range<Int>, flags: UnsafePointer<UInt32>,
                     into acc: UnsafeMutablePointer<Double>) {
        let offset = range.lowerBound
        var i = offset
        func scalar(_ i: Int) {
            let v = Double(abs(x[i]))
            acc[i & 7] += v
            if flags[i - offset] != 0 { acc[8 + (i & 7)] += v }
        }
        while i < range.upperBound, i & 7 != 0 {
            scalar(i)
            i += 1
        }
        if i + 8 <= range.upperBound {
            let raw = UnsafeMutableRawPointer(acc)
            var whole = raw.loadUnaligned(as: SIMD8<Double>.self)
            var kept = raw.loadUnaligned(fromByteOffset: 64, as: SIMD8<Double>.self)
            while i + 8 <= range.upperBound {
                let bits = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<UInt32>.self) & SIMD8(repeating: 0x7FFF_FFFF)
                let keep = UnsafeRawPointer(flags + (i - offset)).loadUnaligned(as: SIMD8<UInt32>.self)
                whole += LaneConversions.wide(unsafeBitCast(bits, to: SIMD8<Float>.self))
                kept += LaneConversions.wide(unsafeBitCast(bits & keep, to: SIMD8<Float>.self))
                i += 8
            }
            raw.storeBytes(of: whole, as: SIMD8<Double>.self)
            raw.storeBytes(of: kept, toByteOffset: 64, as: SIMD8<Double>.self)
        }
        while i < range.upperBound {
            scalar(i)
            i += 1
        }
    }

    /// Ends the pass: fixes the factor and frees the sums.
    func finish() {
        guard let sums else { return }
        factor = Self.factor(norms: Self.norms(lanes: sums.totals()))
        self.sums = nil
    }

    /// The two norms from the sixteen lane totals: each the sum of its eight lanes in lane order.
    static func norms(lanes: [Double]) -> [Double] {
        var whole = 0.0, kept = 0.0
        for l in 0..<8 {
            whole += lanes[l]
            kept += lanes[8 + l]
        }
        return [whole, kept]
    }

    /// mergekit's rule: `‖x‖₁ / ‖kept‖₁` when both are at least 1e-7, else 1.
    static func factor(norms: [Double]) -> Float {
        guard norms[0] >= 1e-7, norms[1] >= 1e-7 else { return 1 }
        return Float(norms[0] / norms[1])
    }
}

/// The rescaling pass over a held operand in one loop (DARE's `RandomMask.fold`, DELLA's `fold`): the two norms'
/// lanes in registers and the plane stored masked, eight elements (`eight`) or one (`one`) at a time, in index order:
/// `|x[i]|` is added to lane `i mod 8` of the whole norm's lanes and, kept, of the kept norm's, as `L1Rescale.fold`
/// adds them from flags, and `x[i]` masked (+0 dropped) is packed into the plane as
/// `HeldOperand.Filling.store(_:_:keeping:)` packs it. `R` is the plane's dtype (bf16 or f16).
struct HeldNormsFold<R: HalfLaneRounding> {
    private let acc: UnsafeMutablePointer<Double>
    private let x: UnsafePointer<Float>
    private let plane: UnsafeMutablePointer<UInt16>
    private var whole: SIMD8<Double>
    private var kept: SIMD8<Double>

    /// A fold continuing from the sixteen lane sums at `acc` (eight of `|x|`, then eight of the kept `|x|`), reading
    /// `x` and storing into `plane` (global indices both); `finish` writes the sums back.
    @inline(__always)
    init(_ acc: UnsafeMutablePointer<Double>, x: UnsafePointer<Float>, plane: UnsafeMutablePointer<UInt16>) {
        self.acc = acc
        self.x = x
        self.plane = plane
        whole = UnsafeRawPointer(acc).loadUnaligned(as: SIMD8<Double>.self)
        kept = UnsafeRawPointer(acc).loadUnaligned(fromByteOffset: 64, as: SIMD8<Double>.self)
    }

    /// Elements `i ..< i + 8` (`i` a multiple of 8), kept where `keep` is all ones (else zero).
    @inline(__always)
    mutating func eight(_ i: Int, keep: SIMD8<UInt32>) {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<UInt32>.self), magnitude = v & 0x7FFF_FFFF
        whole += LaneConversions.wide(unsafeBitCast(magnitude, to: SIMD8<Float>.self))
        kept += LaneConversions.wide(unsafeBitCast(magnitude & keep, to: SIMD8<Float>.self))
        UnsafeMutableRawPointer(plane + i).storeBytes(of: R.pack(unsafeBitCast(v & keep, to: SIMD8<Float>.self)),
                                                      as: SIMD8<UInt16>.self)
    }

    /// Element `i`, kept or not.
    @inline(__always)
    mutating func one(_ i: Int, keeps: Bool) {
        let value = x[i]
        whole[i & 7] += Double(abs(value))
        if keeps { kept[i & 7] += Double(abs(value)) }
        R.store(SIMD8(repeating: keeps ? value : 0), plane, i, 1)
    }

    /// Writes the lane sums back to `acc`.
    @inline(__always)
    func finish() {
        UnsafeMutableRawPointer(acc).storeBytes(of: whole, as: SIMD8<Double>.self)
        UnsafeMutableRawPointer(acc).storeBytes(of: kept, toByteOffset: 64, as: SIMD8<Double>.self)
    }
}
