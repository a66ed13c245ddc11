import IR

/// A task vector `x − y` whose minuend `x` is a load read by nothing else, computed as the load reads it, block by
/// block on the thread that read the block, while it is in that core's cache:
/// - `x` stored as bf16 and the difference of dtype bf16 (a bf16 merge of bf16 checkpoints, the Hub's usual case):
///   one loop decodes each bf16 value (exact: its bits shifted up), subtracts `y` and rounds to bf16, eight lanes a
///   step (`subtractBF16`), as `ArithmeticChunkKernel`'s `.sub` does on the decoded values;
/// - otherwise (f16 or f32 merges of checkpoints stored so) the block is decoded into the difference's buffer and
///   the `.sub` kernel runs on it in place.
/// A load cast to another dtype before the subtraction is read by its cast, so it is not fused.
/// Without the fusion, the load's decoded chunk went out to its own f32 buffer and the subtraction read it back in a
/// second parallel loop.
///
/// The plan is unchanged: the load keeps its step, its chunk buffer (taken and freed where the plan says, never
/// written: `LoadChunkKernel.readByConsumer`) and its part in the non-finite check (`sawNonFinite` is the load's),
/// so the memory held is what the plan predicts. The bits are the two steps' (`LoadSubtractFusionTests`).
final class LoadSubtractChunkKernel: InputReadingKernel {
    private let load: LoadChunkKernel
    private let subtract: ArithmeticChunkKernel

    /// Fuses `subtract` (a `.sub` kernel whose operand 0 is `load`'s value) with `load`, which stops writing its own
    /// buffer.
    init(load: LoadChunkKernel, subtract: ArithmeticChunkKernel) {
        load.readByConsumer = true
        self.load = load
        self.subtract = subtract
    }

    var sawNonFinite: Bool { load.sawNonFinite }

    /// `operands`: the load's (unwritten) chunk buffer and the subtrahend's chunk, as for the `.sub` step.
    /// - Throws: what the load throws (a failed read, naming the file and tensor).
    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let y = SendablePointer(operands.pointers[1]), o = SendablePointer(out)
        if load.storedDType == .bf16, subtract.dtype == .bf16 {
            return try load.readBF16(operands) { x, r in
                Self.subtractBF16(x, y.pointer + r.lowerBound, into: o.pointer + r.lowerBound, count: r.count)
            }
        }
        let chunk = operands.range
        let subtract = UncheckedSubtraction(kernel: subtract)
        try load.produce(operands, into: out, eachBlock: { r in
            let block = ChunkOperands(pointers: [UnsafePointer(o.pointer + r.lowerBound), y.pointer + r.lowerBound],
                                      range: (chunk.lowerBound + r.lowerBound)..<(chunk.lowerBound + r.upperBound))
            // A block is one parallel block: the subtraction's loop runs here, on this thread.
            subtract.kernel.compute(block, into: o.pointer + r.lowerBound)
        })
    }

    /// `o[i] = round(decoded(x[i]) − y[i])` to bf16 for `i` in `0..<count`, `x` bf16 bit patterns: `ArithmeticChunkKernel`'s
    /// rounded `.sub` lanes on the values `DTypeConversion.decode` gives (`BF16Rounding.load` is that decoding).
    @inline(__always)
    static func subtractBF16(_ x: UnsafePointer<UInt16>, _ y: UnsafePointer<Float>, into o: UnsafeMutablePointer<Float>,
                             count: Int) {
        LaneConversions.forEachGroup(0..<count) { i, lanes in
            let difference = BF16Rounding.load(x, i, lanes) - LaneConversions.load(y, i, lanes)
            LaneConversions.store(BF16Rounding.round(difference), o, i, lanes)
        }
    }
}

/// The subtraction handed to the load's reading threads: `ArithmeticChunkKernel` keeps no state between calls.
private struct UncheckedSubtraction: @unchecked Sendable {
    let kernel: ArithmeticChunkKernel
}
