import IR

/// The one operand of a prune kernel (DARE's, DELLA's, and a magnitude prune replaying PyTorch's ties: TIES,
/// breadcrumbs) held whole in the merge dtype, 2 bytes an element, from the kernel's first statistics pass to its
/// output sweep (`KernelCost.offeringToHold`): the output sweep then reads it from here instead of computing it
/// again (loading, decoding and subtracting the base of a fine-tune). The pass stores it from the loop that already
/// reads the operand (`filling`: the L1 norms' fold, the tie cut's gathering), and the sweep's masked output reads
/// it in place (`output`, `reading`), so neither makes a pass of its own over the chunk. Every operand value is a
/// value of the dtype (the planner grants holding only then), so the output is the same.
///
/// A randomized prune (DARE's, DELLA's) stores its operand masked by the decisions of the same pass
/// (`Filling.store(_:_:keeping:)`: dropped elements as +0, as the output sweep would make them), so its sweep reads
/// neither kept decisions nor draws again (`output(factor:range:into:)`), and keeps no `KeepBits` beside the plane.
///
/// Measured on the 1b bench models (`--max-memory 512MiB`): with a pass of its own to store the plane and one to
/// unpack it, holding took `dare_ties3` from 7.7 to 6.8 s (medians of six alternated runs) and left `ties3` even
/// (`perf`: 1,130 samples saved, 1,210 added). Stored and read in place, `dare_ties3` took 13.1–14.7 s of CPU
/// against 14.5–16.4, and `ties3` 16.1–18.7 against 17.7–20.6 (four alternated runs each, inputs read just before).
final class HeldOperand {
    private let plane: AccountedBuffer<UInt16>
    private let dtype: DType
    private let parallel: Parallel
    /// Whether the first pass has ended (the plane is full).
    private var filled = false

    /// The plane for a kernel of `context`, or nil when the plan does not let the kernel hold its operand
    /// (`KernelContext.holdsOperands`) or the merge dtype is not bf16 or f16.
    init?(context: KernelContext) {
        guard Self.holds(context) else { return nil }
        plane = context.memory.allocate(UInt16.self, count: context.elementCount, zeroed: false)
        dtype = context.dtype
        parallel = context.parallel
    }

    /// Whether a kernel of `context` holds its operand once it makes a pass: the plan lets it
    /// (`KernelContext.holdsOperands`) and the merge dtype is bf16 or f16.
    static func holds(_ context: KernelContext) -> Bool {
        context.holdsOperands && (context.dtype == .bf16 || context.dtype == .f16)
    }

    /// Bytes held for a tensor of `n` elements.
    static func bytes(elementCount n: Int) -> Int { n * 2 }

    /// During the first pass, what stores the operand into the plane, part by part, from the loop that reads the
    /// operand for the pass's own work (while its values are in the cache); nil once the plane is full.
    var filling: Filling? {
        filled ? nil : Filling(plane: SendablePointer(plane.pointer), dtype: dtype)
    }

    /// Stores parts of the operand into the plane; calls for different parts may run at once.
    struct Filling: Sendable {
        let plane: SendablePointer<UnsafeMutablePointer<UInt16>>
        /// The merge dtype, bf16 or f16.
        let dtype: DType

        /// Stores `x[part]` (global indices, values of the dtype).
        @inline(__always)
        func store(_ x: UnsafePointer<Float>, _ part: Range<Int>) {
            MergeDTypeRounding.pack(x, as: dtype, into: plane.pointer, part)
        }

        /// Stores `x[part]` (global indices, values of the dtype) with each element whose flag is 0 as +0:
        /// `flags[i − part.lowerBound]` is `0xFFFF_FFFF` (kept) or 0. The plane then holds the pruned operand, which
        /// `HeldOperand.output(factor:range:into:)` scales.
        @inline(__always)
        func store(_ x: UnsafePointer<Float>, _ part: Range<Int>, keeping flags: UnsafePointer<UInt32>) {
            MergeDTypeRounding.pack(x, keeping: flags, as: dtype, into: plane.pointer, part)
        }
    }

    /// Ends a pass: the plane is full after the first.
    func endPass() { filled = true }

    /// In the output sweep of a plane filled masked (`Filling.store(_:_:keeping:)`): `out[i] = R(x[i] · factor)`
    /// for the chunk `range`, rounded by the dtype's rounding `R`, in parallel blocks. A dropped element is +0 in the
    /// plane, so this is `R((kept ? x[i] : 0) · factor)` of the unmasked operand, bit for bit.
    func output(factor: Float, range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let o = SendablePointer(out - range.lowerBound), parallel = self.parallel
        func run<R: HalfLaneRounding>(_ x: Plane<R>) {
            parallel.forEachBlock(in: range) { block in
                // A loop of its own: given to `LaneConversions.forEachGroup`, the body was called, not inlined,
                // once per eight elements.
                let f = SIMD8<Float>(repeating: factor), p = x.p, out = o.pointer
                var i = block.lowerBound
                while i + 8 <= block.upperBound {
                    let v = R.unpack(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<UInt16>.self))
                    UnsafeMutableRawPointer(out + i).storeBytes(of: R.round(v * f), as: SIMD8<Float>.self)
                    i += 8
                }
                if i < block.upperBound {
                    let lanes = block.upperBound - i
                    LaneConversions.store(R.round(R.load(p, i, lanes) * f), out, i, lanes)
                }
            }
        }
        reading(bf16: { run($0) }, f16: { run($0) })
    }

    /// Calls `bf16` or `f16` (by the dtype) with the plane as an operand read in place.
    func reading(bf16: (Plane<BF16Rounding>) -> Void, f16: (Plane<F16Rounding>) -> Void) {
        let p = UnsafePointer(plane.pointer)
        if dtype == .bf16 { bf16(Plane(p: p)) } else { f16(Plane(p: p)) }
    }

    /// The plane as a prune's operand: 16-bit values of `R`'s dtype, read as f32.
    struct Plane<R: HalfLaneRounding>: MaskedOperand, @unchecked Sendable {
        let p: UnsafePointer<UInt16>

        @inline(__always) func bits(_ i: Int) -> SIMD8<UInt32> {
            unsafeBitCast(R.unpack(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<UInt16>.self)), to: SIMD8<UInt32>.self)
        }
        @inline(__always) subscript(_ i: Int) -> Float { R.load(p, i, 1)[0] }
    }
}

extension KernelCost {
    /// This cost with the offer to hold the kernel's one operand (`HeldOperand`) from its first pass on, the
    /// operand read in every pass but not in the output sweep: made when the kernel makes passes and the operand
    /// is of the merge dtype, bf16 or f16 (`operand`, `result`), over `n` elements.
    func offeringToHold(operand: DType, result: DType, elementCount n: Int) -> KernelCost {
        guard passes > 0, operand == result, result == .bf16 || result == .f16 else { return self }
        let plane = HeldOperand.bytes(elementCount: n)
        var cost = self
        cost.holding = OperandHolding(operandPasses: passes, passBytes: passBytes.map { $0 + plane },
                                      sweepBytes: sweepBytes + plane)
        return cost
    }
}
