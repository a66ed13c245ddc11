import IR

/// Computes one IR node from its operands' buffers; loads read from the opened checkpoints.
struct NodeEvaluator {
    var graph: Graph
    var models: [SafetensorsModel]
    var parallel: Parallel

    func evaluate(_ id: ValueID, operands: [TensorBuffer]) throws(ExecutionError) -> TensorBuffer {
        let node = graph[id]
        let dtype = node.type.dtype
        switch node.op {
        case .load(let m, let name):
            let model = models[m]
            guard let stored = model.tensor(name) else {
                throw .safetensors(.tensorNotInCheckpoint(directory: model.directory, tensor: name))
            }
            let out = TensorBuffer(count: stored.elementCount)
            do {
                try model.readFloats(stored, elementOffset: 0, count: stored.elementCount, into: out.pointer)
            } catch {
                throw .safetensors(error)
            }
            model.releasePages(stored)
            return out
        case .cast(let target):
            return ElementwiseKernels.cast(operands[0], to: target, parallel: parallel)
        case .scale(let s):
            return ElementwiseKernels.scale(operands[0], by: s, dtype: dtype, parallel: parallel)
        case .sub:
            return ElementwiseKernels.sub(operands[0], operands[1], dtype: dtype, parallel: parallel)
        case .add:
            return ElementwiseKernels.add(operands[0], operands[1], dtype: dtype, parallel: parallel)
        case .weightedSum(let c):
            return ElementwiseKernels.weightedSum(operands, coefficients: c, dtype: dtype, parallel: parallel)
        case .slerp(let t):
            return SlerpKernel.slerp(t: t, operands[0], operands[1], dtype: dtype, parallel: parallel)
        case .modelStock(let filterWise):
            let shape = node.type.shape
            let rowLength = filterWise ? (shape.last ?? 1) : node.type.elementCount
            return ModelStockKernel.merge(operands, rowLength: rowLength, dtype: dtype, parallel: parallel)
        case .magnitudePrune(let keep, let rescale):
            return MagnitudePruneKernel.prune(operands[0], keep: keep, rescale: rescale, dtype: dtype, parallel: parallel)
        case .signElect(let w):
            return SignConsensusKernels.elect(operands, weights: w, parallel: parallel)
        case .disjointMerge(let w, let normalize, let lambda):
            return SignConsensusKernels.merge(operands, weights: w, normalize: normalize, lambda: lambda,
                                              dtype: dtype, parallel: parallel)
        case .mul:
            return MaskKernels.mul(operands[0], operands[1], dtype: dtype, parallel: parallel)
        case .nearSwap(let t):
            return NearSwapKernel.merge(t: t, base: operands[0], other: operands[1], dtype: dtype, parallel: parallel)
        case .varianceTopK(let fraction):
            return MaskKernels.varianceTopK(operands, fraction: fraction, parallel: parallel)
        case .sceMerge:
            return SCEMergeKernel.merge(operands, dtype: dtype, parallel: parallel)
        case .nuslerp(let t, let axis):
            return NuslerpKernel.nuslerp(t: t, operands[0], operands[1], shape: node.type.shape, axis: axis,
                                         dtype: dtype, parallel: parallel)
        case .multislerp(let w, let eps):
            do {
                return try MultislerpKernel.merge(operands, weights: w, eps: eps, dtype: dtype, parallel: parallel)
            } catch {
                throw .undefinedMerge(value: "\(id)" + (node.note.map { ", \($0)" } ?? ""), op: node.op.mnemonic,
                                      "the weighted sum of the input tensors is zero (antipodal inputs whose weights "
                                          + "balance out); use different weights")
            }
        case .karcher(let maxIter, let tol):
            return KarcherKernel.merge(operands, maxIter: maxIter, tol: tol, dtype: dtype, parallel: parallel)
        case .arceeFusion:
            return ArceeFusionKernel.merge(base: operands[0], other: operands[1], rowLength: node.type.shape.last ?? 1,
                                           dtype: dtype, parallel: parallel)
        case .randomPrune(let density, let rescale, let seed, let key):
            return RandomPruneKernel.prune(operands[0], density: density, rescale: rescale, seed: seed, key: key,
                                           dtype: dtype, parallel: parallel)
        case .dellaPrune(let density, let epsilon, let rescale, let seed, let key):
            return DellaPruneKernel.prune(operands[0], shape: node.type.shape, density: density, epsilon: epsilon,
                                          rescale: rescale, seed: seed, key: key, dtype: dtype, parallel: parallel)
        case .ramMerge(let epsilon):
            return RamKernel.merge(operands, epsilon: epsilon, dtype: dtype, parallel: parallel)
        case .ramPlusMerge(let r, let alpha, let epsilon):
            return RamKernel.mergePlus(operands, r: r, alpha: alpha, epsilon: epsilon, dtype: dtype, parallel: parallel)
        }
    }
}
