import IR

/// Computes ops that have no streaming kernel yet from whole operand tensors.
enum NodeEvaluator {
    static func evaluate(_ op: Op, shape: [Int], dtype: DType, operands: [TensorBuffer],
                         parallel: Parallel) throws(ExecutionError) -> TensorBuffer {
        let elementCount = shape.reduce(1, *)
        switch op {
        case .slerp(let t):
            return SlerpKernel.slerp(t: t, operands[0], operands[1], dtype: dtype, parallel: parallel)
        case .modelStock(let filterWise):
            let shape = shape
            let rowLength = filterWise ? (shape.last ?? 1) : elementCount
            return ModelStockKernel.merge(operands, rowLength: rowLength, dtype: dtype, parallel: parallel)
        case .magnitudePrune(let keep, let rescale):
            return MagnitudePruneKernel.prune(operands[0], keep: keep, rescale: rescale, dtype: dtype, parallel: parallel)
        case .varianceTopK(let fraction):
            return MaskKernels.varianceTopK(operands, fraction: fraction, parallel: parallel)
        case .nuslerp(let t, let axis):
            return NuslerpKernel.nuslerp(t: t, operands[0], operands[1], shape: shape, axis: axis,
                                         dtype: dtype, parallel: parallel)
        case .multislerp(let w, let eps):
            do {
                return try MultislerpKernel.merge(operands, weights: w, eps: eps, dtype: dtype, parallel: parallel)
            } catch {
                throw .undefinedMerge(value: "", op: op.mnemonic,
                                      "the weighted sum of the input tensors is zero (antipodal inputs whose weights "
                                          + "balance out); use different weights")
            }
        case .karcher(let maxIter, let tol):
            return KarcherKernel.merge(operands, maxIter: maxIter, tol: tol, dtype: dtype, parallel: parallel)
        case .arceeFusion:
            return ArceeFusionKernel.merge(base: operands[0], other: operands[1], rowLength: shape.last ?? 1,
                                           dtype: dtype, parallel: parallel)
        default:
            preconditionFailure("\(op.mnemonic) has a streaming kernel")
        }
    }
}
