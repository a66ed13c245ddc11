/// An operand as a kernel that reads planes (`ChunkKernel.readsBF16Planes`: SCE's mix, SLERP) reads it, by global
/// element index: f32 values in a chunk buffer, or the bf16 plane the runner handed over packed
/// (`ChunkOperands.planes`).
enum LaneSource: @unchecked Sendable {
    case floats(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>)

    /// Operand `k` of `operands`: its plane when it is one, else its chunk buffer.
    init(_ operands: ChunkOperands, _ k: Int) {
        if let plane = operands.plane(k) { self = .bf16(plane) } else { self = .floats(operands.global(k)) }
    }

    /// Elements `i ..< i + lanes` (`lanes` at most 8; the other lanes 0) as f32.
    @inline(__always)
    func load(_ i: Int, _ lanes: Int) -> SIMD8<Float> {
        switch self {
        case .floats(let p): return LaneConversions.load(p, i, lanes)
        case .bf16(let p): return BF16Rounding.load(p, i, lanes)
        }
    }
}
