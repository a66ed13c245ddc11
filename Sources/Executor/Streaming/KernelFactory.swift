import IR

/// Builds the streaming kernel of each IR op.
enum KernelFactory {
    /// The kernel computing `op` for a node described by `context`; loads are `LoadChunkKernel`s.
    static func kernel(for op: Op, operandCount: Int, context: KernelContext) -> ChunkKernel {
        switch op {
        case .load:
            preconditionFailure("loads read checkpoints: LoadChunkKernel")
        case .cast:
            return ElementwiseChunkKernel(context) { p, i in p.inputs[0][i] }
        case .scale(let s):
            let f = Float(s)
            return ElementwiseChunkKernel(context) { p, i in p.inputs[0][i] * f }
        case .sub:
            return ElementwiseChunkKernel(context) { p, i in p.inputs[0][i] - p.inputs[1][i] }
        case .add:
            return ElementwiseChunkKernel(context) { p, i in p.inputs[0][i] + p.inputs[1][i] }
        case .mul:
            return ElementwiseChunkKernel(context) { p, i in p.inputs[0][i] * p.inputs[1][i] }
        case .weightedSum(let c):
            return ElementwiseChunkKernel(context) { p, i in
                var acc = 0.0
                for k in 0..<c.count { acc += c[k] * Double(p.inputs[k][i]) }
                return Float(acc)
            }
        case .signElect(let w):
            return ElementwiseChunkKernel(context) { p, i in SignConsensusKernels.elect(p, weights: w, i) }
        case .disjointMerge(let w, let normalize, let lambda):
            return ElementwiseChunkKernel(context) { p, i in
                SignConsensusKernels.merge(p, weights: w, normalize: normalize, lambda: lambda, i)
            }
        case .nearSwap(let t):
            return ElementwiseChunkKernel(context) { p, i in NearSwapKernel.merge(t: t, p, i) }
        case .ramMerge(let epsilon):
            let threshold = RamKernel.threshold(epsilon, context.dtype)
            return ElementwiseChunkKernel(context) { p, i in RamKernel.merge(p, threshold: threshold, scales: nil, i) }
        case .ramPlusMerge(let r, let alpha, let epsilon):
            return RamPlusChunkKernel(r: r, alpha: alpha, epsilon: epsilon, operands: operandCount, context: context)
        case .randomPrune(let density, let rescale, let seed, let key):
            return RandomPruneChunkKernel(density: density, rescale: rescale, seed: seed, key: key, context: context)
        case .dellaPrune(let density, let epsilon, let rescale, let seed, let key):
            return DellaPruneChunkKernel(density: density, epsilon: epsilon, rescale: rescale, seed: seed, key: key,
                                         context: context)
        case .sceMerge:
            return SCEMergeChunkKernel(operands: operandCount, context: context)
        case .slerp, .modelStock, .magnitudePrune, .varianceTopK, .nuslerp, .multislerp, .karcher, .arceeFusion:
            return WholeTensorKernel(op: op, context: context)
        }
    }
}
