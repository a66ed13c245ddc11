import IR

/// Computes ops that have no streaming kernel yet from whole operand tensors.
enum NodeEvaluator {
    static func evaluate(_ op: Op, shape: [Int], dtype: DType, operands: [TensorBuffer],
                         parallel: Parallel) throws(ExecutionError) -> TensorBuffer {
        switch op {
        case .sceMerge:
            return SCEMergeKernel.merge(operands, dtype: dtype, parallel: parallel)
        case .randomPrune(let density, let rescale, let seed, let key):
            return RandomPruneKernel.prune(operands[0], density: density, rescale: rescale, seed: seed, key: key,
                                           dtype: dtype, parallel: parallel)
        case .dellaPrune(let density, let epsilon, let rescale, let seed, let key):
            return DellaPruneKernel.prune(operands[0], shape: shape, density: density, epsilon: epsilon,
                                          rescale: rescale, seed: seed, key: key, dtype: dtype, parallel: parallel)
        default:
            preconditionFailure("\(op.mnemonic) has a streaming kernel")
        }
    }
}
