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
        case .magnitudePrune, .varianceTopK, .sceMerge, .arceeFusion, .randomPrune, .dellaPrune:
            return WholeTensorKernel(op: op, context: context)
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
}
