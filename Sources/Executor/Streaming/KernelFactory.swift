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
        case .slerp(let t):
            return InterpolationChunkKernel(context: context) {
                InterpolationCoefficients.slerp(t: t, aa: $0, bb: $1, ab: $2)
            }
        case .nuslerp(let t, let axis):
            return nuslerp(t: t, axis: axis, context: context)
        case .modelStock(let filterWise):
            return ModelStockChunkKernel(filterWise: filterWise, operands: operandCount, context: context)
        case .multislerp(let w, let eps):
            return GramChunkKernel(operands: operandCount, context: context) { g throws(ExecutionError) in
                try Multislerp.coefficients(gram: g, weights: w, eps: eps).enumerated().map { ($0, $1) }
            }
        case .karcher(let maxIter, let tol):
            return GramChunkKernel(operands: operandCount, context: context) { g in
                Karcher.terms(gram: g, maxIter: maxIter, tol: tol)
            }
        case .magnitudePrune(let keep, let rescale):
            return MagnitudePruneChunkKernel(keep: keep, rescale: rescale, context: context)
        case .varianceTopK(let fraction):
            return VarianceTopKChunkKernel(fraction: fraction, context: context)
        case .arceeFusion:
            return ArceeFusionChunkKernel(context: context)
        case .randomPrune(let density, let rescale, let seed, let key):
            return RandomPruneChunkKernel(density: density, rescale: rescale, seed: seed, key: key, context: context)
        case .dellaPrune(let density, let epsilon, let rescale, let seed, let key):
            return DellaPruneChunkKernel(density: density, epsilon: epsilon, rescale: rescale, seed: seed, key: key,
                                         context: context)
        case .sceMerge:
            return SCEMergeChunkKernel(operands: operandCount, context: context)
        }
    }

    /// NuSLERP's kernel for `axis`: a tensor that is a single vector (flattened, 0-D or 1-D, or one row or column
    /// along the axis) takes whole-tensor sums; otherwise rows are chunk-local and columns take a pass.
    private static func nuslerp(t: Double, axis: SlerpAxis, context: KernelContext) -> ChunkKernel {
        let n = context.elementCount
        let shape = context.shape
        let length = max(1, axis == .firstDim ? shape.first ?? n : shape.last ?? n)
        if axis == .flattened || n / length <= 1 {
            return InterpolationChunkKernel(context: context) {
                InterpolationCoefficients.nuslerp(t: t, aa: $0, bb: $1, ab: $2)
            }
        }
        if axis == .lastDim { return NuslerpRowsChunkKernel(t: t, rowLength: length, context: context) }
        return NuslerpColumnsChunkKernel(t: t, columns: n / length, context: context)
    }

    /// A TIES disjoint merge whose elected sign is read by nothing else and elected from the same task vectors
    /// runs as one kernel over the task vectors (its operands without the sign); nil otherwise.
    static func fusedSignConsensus(_ node: Node, graph: Graph, users: [ValueID: Int],
                                   context: KernelContext) -> ChunkKernel? {
        guard case .disjointMerge(let w, let normalize, let lambda) = node.op, let sign = node.operands.first,
              case .signElect(let e) = graph[sign].op, graph[sign].operands == Array(node.operands.dropFirst()),
              users[sign] == 1 else { return nil }
        return SignConsensusChunkKernel(.electAndMerge(electWeights: e, weights: w, normalize: normalize, lambda: lambda),
                                        context: context)
    }
}
