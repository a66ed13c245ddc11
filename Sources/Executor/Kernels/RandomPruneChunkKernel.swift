import Checkpoint
import IR

/// DARE's random pruning (mergekit's `bernoulli`): each element survives with probability `density`, decided by
/// a Philox draw for (seed, stream key, element index), so the mask is the same for any chunking and thread
/// count. Without rescaling it is per element; with it, one pass measures the L1 norms first (`L1Rescale`).
final class RandomPruneChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let mask: RandomMask
    private let rescale: L1Rescale

    init(density: Double, rescale: Bool, seed: UInt64, key: UInt64, context: KernelContext) {
        self.context = context
        mask = RandomMask(rng: Philox4x32(seed: seed), key: key, density: density)
        self.rescale = L1Rescale(enabled: rescale, context: context)
    }

    func beginPass() -> Bool { rescale.needsPass }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let mask = self.mask
        rescale.add(operands.range, x: operands.global(0)) { i in mask.keeps(i) }
    }

    func endPass() throws(ExecutionError) { rescale.finish() }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = operands.shared(output: out)
        let mask = self.mask, factor = rescale.factor, dtype = context.dtype
        context.parallel.forEachBlock(in: operands.range) { range in
            let x = p.inputs[0], o = p.output
            for i in range { o[i] = DTypeConversion.round((mask.keeps(i) ? x[i] : 0) * factor, to: dtype) }
        }
    }
}

/// The keep decision of DARE: element `i` is kept when its Philox draw is below `density`.
struct RandomMask: Sendable {
    let rng: Philox4x32
    let key: UInt64
    let density: Double

    @inline(__always)
    func keeps(_ i: Int) -> Bool { rng.uniform(stream: key, index: i) < density }
}

extension RandomPruneChunkKernel {
    /// With `rescale`, the two L1 norms' block sums for one pass; nothing otherwise.
    static func cost(rescale: Bool, elementCount n: Int) -> KernelCost {
        guard rescale else { return KernelCost() }
        let sums = StreamingSums.bytes(elementCount: n, width: 2)
        return KernelCost(initialBytes: sums, passBytes: [sums])
    }
}
