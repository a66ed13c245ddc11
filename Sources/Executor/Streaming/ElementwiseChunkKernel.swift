import Checkpoint
import IR

/// A kernel whose output element `i` depends only on element `i` of its operands.
final class ElementwiseChunkKernel: ChunkKernel {
    /// Computes the output elements `range` (global indices, at most `KernelContext.roundingTile` of them) from
    /// the operands, both indexed by global element index in `SharedPointers`; one call per tile, so that the
    /// function's loop can run in vector registers.
    typealias Elements = @Sendable (SharedPointers, Range<Int>) -> Void

    private let context: KernelContext
    private let elements: Elements

    init(_ context: KernelContext, _ elements: @escaping Elements) {
        self.context = context
        self.elements = elements
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let elements = self.elements
        context.forEachRoundedBlock(operands, into: out) { p, range in elements(p, range) }
    }
}

extension KernelContext {
    /// Runs `body(p, range)` over the chunk's blocks in parallel, `p` holding the operands and `out` by global
    /// element index. Unless the node is f32, each block goes in tiles of `roundingTile` elements, each rounded to
    /// the node's dtype right after `body` wrote it, while it is still in the L1 cache.
    func forEachRoundedBlock(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>,
                             _ body: @Sendable (SharedPointers, Range<Int>) -> Void) {
        let p = operands.shared(output: out)
        let dtype = self.dtype
        let tile = KernelContext.roundingTile
        parallel.forEachBlock(in: operands.range) { range in
            guard dtype != .f32 else { return body(p, range) }
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(range.upperBound, start + tile)
                body(p, start..<end)
                DTypeConversion.roundInPlace(p.output + start, count: end - start, to: dtype)
                start = end
            }
        }
    }

    /// Elements written and rounded at a time: 16 KiB of f32.
    static let roundingTile = 4096

    /// Runs `loop` over the chunk's blocks in parallel, with the lane rounding of the node's dtype, so that each
    /// value is rounded in the loop that computes it (bf16, f16); other dtypes run it unrounded (`NoRounding`) and
    /// round each block afterwards (f32: nothing to do). The same bits as `forEachRoundedBlock` with the loop's
    /// unrounded values: the lane roundings are `DTypeConversion.round`.
    func forEachLaneRoundedBlock<Loop: LaneRoundedLoop>(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>,
                                                         _ loop: Loop) {
        let p = operands.shared(output: out), dtype = self.dtype
        parallel.forEachBlock(in: operands.range) { range in
            switch dtype {
            case .bf16: loop.run(BF16Rounding.self, p, range)
            case .f16: loop.run(F16Rounding.self, p, range)
            default:
                loop.run(NoRounding.self, p, range)
                DTypeConversion.roundInPlace(p.output + range.lowerBound, count: range.count, to: dtype)
            }
        }
    }
}

/// A kernel's loop over a block of output elements that rounds each value itself (`KernelContext
/// .forEachLaneRoundedBlock` picks the rounding from the node's dtype).
protocol LaneRoundedLoop: Sendable {
    /// Writes output elements `range` (global indices) to `p.output`, each rounded by `R`.
    func run<R: LaneRounding>(_: R.Type, _ p: SharedPointers, _ range: Range<Int>)
}

extension ChunkOperands {
    /// The operands and `out` (which holds this chunk) as pointers indexed by global element index.
    func shared(output out: UnsafeMutablePointer<Float>) -> SharedPointers {
        SharedPointers(inputs: pointers.indices.map { global($0) }, output: out - range.lowerBound)
    }
}

extension Parallel {
    /// Calls `body` with sub-ranges of `range` (global indices), one per block of `blockSize` elements from its start.
    public func forEachBlock(in range: Range<Int>, _ body: @Sendable (Range<Int>) -> Void) {
        let start = range.lowerBound
        forEachBlock(count: range.count) { r in body((start + r.lowerBound)..<(start + r.upperBound)) }
    }
}
