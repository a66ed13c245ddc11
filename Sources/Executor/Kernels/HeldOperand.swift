import IR

/// The one operand of a random prune kernel (DARE's, DELLA's) held whole in the merge dtype, 2 bytes an element,
/// from the kernel's first statistics pass to its output sweep (`KernelCost.offeringToHold`): the output sweep
/// then reads it from here instead of computing it again (loading, decoding and subtracting the base of a fine-tune).
/// Every operand value is a value of the dtype (the planner grants holding only then), so the output is the same.
///
/// Measured on the 1b bench models (`--max-memory 512MiB`, `perf record`): on `dare_ties3` the output sweep's
/// copies, decoding and `sub`s fell by about 1,900 samples and storing and unpacking the planes (memory-bound)
/// took about 1,100, 14% fewer samples in all (wall 7.7 → 6.8 s, medians of six alternated runs). On `ties3`
/// the two were even (1,130 against 1,210), so TIES's magnitude prune does not offer it.
final class HeldOperand {
    private let plane: AccountedBuffer<UInt16>
    private let dtype: DType
    private let parallel: Parallel
    /// Whether the first pass has ended (the plane is full).
    private var filled = false

    /// The plane for a kernel of `context`, or nil when the plan does not let the kernel hold its operand
    /// (`KernelContext.holdsOperands`) or the merge dtype is not bf16 or f16.
    init?(context: KernelContext) {
        guard context.holdsOperands, context.dtype == .bf16 || context.dtype == .f16 else { return nil }
        plane = context.memory.allocate(UInt16.self, count: context.elementCount, zeroed: false)
        dtype = context.dtype
        parallel = context.parallel
    }

    /// Bytes held for a tensor of `n` elements.
    static func bytes(elementCount n: Int) -> Int { n * 2 }

    /// During the first pass: stores the chunk's operand (`operands.pointers[0]`, values of the dtype).
    func store(_ operands: ChunkOperands) {
        guard !filled, let first = operands.pointers.first else { return }
        let x = SendablePointer(first - operands.range.lowerBound), p = SendablePointer(plane.pointer)
        switch dtype {
        case .bf16: parallel.forEachBlock(in: operands.range) { BF16Rounding.pack(x.pointer, into: p.pointer, $0) }
        default: parallel.forEachBlock(in: operands.range) { F16Rounding.pack(x.pointer, into: p.pointer, $0) }
        }
    }

    /// Ends a pass: the plane is full after the first.
    func endPass() { filled = true }

    /// In the output sweep: the chunk `range`'s operand unpacked into `out` (the kernel's output chunk, which the
    /// kernel then computes in place, element by element), as the operands the kernel would have got.
    func operands(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) -> ChunkOperands {
        let o = SendablePointer(out - range.lowerBound), p = SendablePointer(UnsafePointer(plane.pointer))
        switch dtype {
        case .bf16: parallel.forEachBlock(in: range) { BF16Rounding.unpack(p.pointer, into: o.pointer, $0) }
        default: parallel.forEachBlock(in: range) { F16Rounding.unpack(p.pointer, into: o.pointer, $0) }
        }
        return ChunkOperands(pointers: [UnsafePointer(out)], range: range)
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
