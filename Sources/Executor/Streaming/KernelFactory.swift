import IR

/// Builds the streaming kernel of each IR op.
enum KernelFactory {
    /// The kernel computing `op` for a node described by `context`; loads are `LoadChunkKernel`s.
    static func kernel(for op: Op, operandCount: Int, context: KernelContext) -> ChunkKernel {
        switch op {
        case .load:
            preconditionFailure("loads read checkpoints: LoadChunkKernel")
        case .cast:
            return ArithmeticChunkKernel(.copy, context: context)
        case .scale(let s):
            return ArithmeticChunkKernel(.scale(Float(s)), context: context)
        case .sub:
            return ArithmeticChunkKernel(.sub, context: context)
        case .add:
            return ArithmeticChunkKernel(.add, context: context)
        case .mul:
            return ArithmeticChunkKernel(.mul, context: context)
        case .weightedSum(let c):
            return ArithmeticChunkKernel(.weightedSum(c), context: context)
        case .signElect(let w):
            return SignConsensusChunkKernel(.elect(w), context: context)
        case .disjointMerge(let w, let normalize, let lambda):
            return SignConsensusChunkKernel(.merge(weights: w, normalize: normalize, lambda: lambda), context: context)
        case .nearSwap(let t):
            return ElementwiseChunkKernel(context) { p, i in NearSwapKernel.merge(t: t, p, i) }
        case .ramMerge(let epsilon):
            let threshold = RamKernel.threshold(epsilon, context.dtype)
            return ElementwiseChunkKernel(context) { p, i in RamKernel.merge(p, threshold: threshold, scales: nil, i) }
        case .ramPlusMerge(let r, let alpha, let epsilon):
            return RamPlusChunkKernel(r: r, alpha: alpha, epsilon: epsilon, operands: operandCount, context: context)
        case .slerp, .modelStock, .magnitudePrune, .varianceTopK, .sceMerge, .nuslerp, .multislerp, .karcher,
             .arceeFusion, .randomPrune, .dellaPrune:
            return WholeTensorKernel(op: op, context: context)
        }
    }
}
