import Checkpoint
import IR

/// The streaming form of one IR op: its kernel's declared cost (`KernelCost`) and how to build the kernel. Both
/// come from the kernel's own file, so the planner's prediction and the executor's run cannot drift apart.
struct KernelDeclaration {
    var cost: KernelCost
    /// Builds the kernel for a node described by a `KernelContext`; nil for the ops that read checkpoints, which the
    /// plan executor builds from the models' readers (`LoadChunkKernel`, `RawLoadChunkKernel` for integer and BOOL
    /// tensors, `LoRADeltaChunkKernel`, `VocabularyGatherChunkKernel`).
    var make: ((KernelContext) -> ChunkKernel)?
}

/// The executor's kernels seen through the planner's cost port: the planner schedules with the costs the
/// kernels declare (`KernelFactory.declaration`).
public struct StreamingCostModel: CostModel {
    public let bytesPerOpenShard: Int

    /// The costs of the executor's kernels, writing through `output` (safetensors by default).
    public init(output: any CheckpointWriter = SafetensorsCheckpointWriter()) {
        bytesPerOpenShard = output.bytesPerOpenShard
    }

    public func cost(of op: Op, result: TensorType, operands: [TensorType], threads: Int) -> KernelCost {
        KernelFactory.declaration(for: op, result: result, operands: operands, threads: threads).cost
    }
}

/// Maps each IR op to its streaming kernel: the one place an op meets its kernel.
enum KernelFactory {
    /// The kernel of `op` computing a `result` from `operands` on `threads` threads.
    static func declaration(for op: Op, result: TensorType, operands: [TensorType],
                            threads: Int) -> KernelDeclaration {
        let n = result.elementCount
        let count = operands.count
        func stateless(_ make: @escaping (KernelContext) -> ChunkKernel) -> KernelDeclaration {
            KernelDeclaration(cost: KernelCost(), make: make)
        }
        switch op {
        case .load where !result.dtype.isFloatingPoint:
            return KernelDeclaration(cost: RawLoadChunkKernel.cost, make: nil)
        case .load:
            return KernelDeclaration(cost: LoadChunkKernel.cost(stored: result.dtype), make: nil)
        case .loraDelta(_, _, _, let rank, _, _):
            return KernelDeclaration(cost: LoRADeltaChunkKernel.cost(rank: rank, shape: result.shape, threads: threads),
                                     make: nil)
        case .vocabularyGather(let gather):
            return KernelDeclaration(cost: VocabularyGatherChunkKernel.cost(gather, shape: result.shape), make: nil)
        case .copyEqual:
            return KernelDeclaration(cost: CopyEqualChunkKernel.cost) { CopyEqualChunkKernel(context: $0) }
        case .cast:
            return stateless { ArithmeticChunkKernel(.copy, context: $0) }
        case .scale(let s):
            return stateless { ArithmeticChunkKernel(.scale(Float(s)), context: $0) }
        case .sub:
            return stateless { ArithmeticChunkKernel(.sub, context: $0) }
        case .add:
            return stateless { ArithmeticChunkKernel(.add, context: $0) }
        case .mul:
            return stateless { ArithmeticChunkKernel(.mul, context: $0) }
        case .weightedSum(let c):
            return stateless { ArithmeticChunkKernel(.weightedSum(c), context: $0) }
        case .variance:
            return stateless { ArithmeticChunkKernel(.variance, context: $0) }
        case .linearMix(let w, let normalize):
            // `weight.sum(dim=1)` of the f32 weights, in order.
            let divisor = normalize ? w.reduce(Float(0)) { $0 + Float($1) } : nil
            return stateless { ArithmeticChunkKernel(.linearMix(w.map { Float($0) }, divisor: divisor), context: $0) }
        case .taskMix(let w, let normalize, let lambda):
            return stateless { SignConsensusChunkKernel(.mix(weights: w, normalize: normalize, lambda: lambda), context: $0) }
        case .signElect(let w):
            return stateless { SignConsensusChunkKernel(.elect(w), context: $0) }
        case .disjointMerge(let w, let normalize, let lambda):
            return stateless { SignConsensusChunkKernel(.merge(weights: w, normalize: normalize, lambda: lambda), context: $0) }
        case .tiesMerge(let e, let w, let normalize, let lambda):
            return stateless {
                SignConsensusChunkKernel(.electAndMerge(electWeights: e, weights: w, normalize: normalize, lambda: lambda),
                                         context: $0)
            }
        case .nearSwap(let t):
            return stateless { context in
                let dtype = context.dtype
                return ElementwiseChunkKernel(context) { p, range in NearSwapKernel.merge(t: t, dtype: dtype, p, range) }
            }
        case .ramMerge(let epsilon):
            return stateless { context in
                let threshold = RamKernel.threshold(epsilon, context.dtype)
                return RamChunkKernel(threshold: threshold, context: context)
            }
        case .ramPlusMerge(let r, let alpha, let epsilon):
            return KernelDeclaration(cost: RamPlusChunkKernel.cost(elementCount: n, operands: count)) {
                RamPlusChunkKernel(r: r, alpha: alpha, epsilon: epsilon, operands: count, context: $0)
            }
        case .slerp(let t):
            return KernelDeclaration(cost: SlerpChunkKernel.cost(elementCount: n)) {
                SlerpChunkKernel(t: Float(t), context: $0)
            }
        case .nuslerp(let t, let axis):
            return nuslerp(t: t, axis: axis, shape: result.shape, dtype: result.dtype)
        case .modelStock(let filterWise):
            return KernelDeclaration(cost: ModelStockChunkKernel.cost(filterWise: filterWise, elementCount: n, operands: count, dtype: result.dtype)) {
                ModelStockChunkKernel(filterWise: filterWise, operands: count, context: $0)
            }
        case .multislerp(let w, let eps) where result.dtype == .bf16:
            return KernelDeclaration(cost: Multislerp.halfPrecisionCost(
                elementCount: n, models: count, operandsInMergeDType: operands.allSatisfy { $0.dtype == result.dtype })) {
                MultislerpHalfPrecisionChunkKernel<BF16Rounding>(weights: w, eps: eps, context: $0)
            }
        case .multislerp(let w, let eps) where result.dtype == .f16:
            return KernelDeclaration(cost: Multislerp.halfPrecisionCost(
                elementCount: n, models: count, operandsInMergeDType: operands.allSatisfy { $0.dtype == result.dtype })) {
                MultislerpHalfPrecisionChunkKernel<F16Rounding>(weights: w, eps: eps, context: $0)
            }
        case .multislerp(let w, let eps):
            return KernelDeclaration(cost: GramChunkKernel.cost(elementCount: n, operands: count)) {
                GramChunkKernel(operands: count, context: $0) { g throws(ExecutionError) in
                    try Multislerp.coefficients(gram: g, weights: w, eps: eps).enumerated().map { ($0, $1) }
                }
            }
        case .karcher(let maxIter, let tol):
            return KernelDeclaration(cost: GramChunkKernel.cost(elementCount: n, operands: count)) {
                GramChunkKernel(operands: count, context: $0) { g in Karcher.terms(gram: g, maxIter: maxIter, tol: tol) }
            }
        case .magnitudePrune(let keep, let rescale, let ties):
            // Replaying PyTorch's ties, the kernel can hold its operand and read it in the sweep (`HeldOperand`).
            let cost = MagnitudePruneChunkKernel.declaredCost(keep: keep, rescale: rescale, ties: ties, elementCount: n,
                                                              operand: operands.first?.dtype ?? .f32,
                                                              result: result.dtype, threads: threads)
            return KernelDeclaration(cost: cost) {
                MagnitudePruneChunkKernel(keep: keep, rescale: rescale, ties: ties, context: $0)
            }
        case .varianceTopK(let fraction):
            return KernelDeclaration(cost: VarianceTopKChunkKernel.cost(fraction: fraction, elementCount: n, threads: threads)) {
                VarianceTopKChunkKernel(fraction: fraction, context: $0)
            }
        case .arceeFusion:
            return KernelDeclaration(cost: ArceeFusionChunkKernel.cost(shape: result.shape, dtype: result.dtype, threads: threads)) {
                ArceeFusionChunkKernel(context: $0)
            }
        case .randomPrune(let density, let rescale, let seed, let key):
            return KernelDeclaration(cost: RandomPruneChunkKernel.declaredCost(
                rescale: rescale, elementCount: n, operand: operands.first?.dtype ?? .f32, result: result.dtype)) {
                RandomPruneChunkKernel(density: density, rescale: rescale, seed: seed, key: key, context: $0)
            }
        case .dellaPrune(let density, let epsilon, let rescale, let seed, let key):
            return KernelDeclaration(cost: DellaPruneChunkKernel.declaredCost(
                rescale: rescale, shape: result.shape, threads: threads, operand: operands.first?.dtype ?? .f32,
                result: result.dtype)) {
                DellaPruneChunkKernel(density: density, epsilon: epsilon, rescale: rescale, seed: seed, key: key, context: $0)
            }
        case .sceMerge:
            // The elected sign, then the task vectors.
            let models = max(0, count - 1)
            return KernelDeclaration(cost: SCEMergeChunkKernel.cost(elementCount: n, models: models, dtype: result.dtype)) {
                SCEMergeChunkKernel(models: models, context: $0)
            }
        case .sceElectMerge(let masked):
            // The task vectors, then their mask when `masked`.
            let models = masked ? max(0, count - 1) : count
            return KernelDeclaration(cost: SCEMergeChunkKernel.cost(elementCount: n, models: models, dtype: result.dtype)) {
                SCEMergeChunkKernel(models: models, electing: true, masked: masked, context: $0)
            }
        }
    }

    /// NuSLERP's kernel for `axis`: a tensor that is a single vector (flattened, 0-D or 1-D, or one row or column
    /// along the axis) takes whole-tensor sums; otherwise rows are chunk-local and columns take a pass. bf16 and
    /// f16 merges round every op as mergekit's tensors do (`NuslerpHalfPrecisionChunkKernel`).
    private static func nuslerp(t: Double, axis: SlerpAxis, shape: [Int], dtype: DType) -> KernelDeclaration {
        let n = shape.reduce(1, *)
        let length = max(1, axis == .firstDim ? shape.first ?? n : shape.last ?? n)
        if dtype == .bf16 || dtype == .f16 {
            let vectors: NuslerpVectors =
                axis == .flattened || n / length <= 1 ? .whole
                : axis == .lastDim ? .rows(length: length) : .columns(count: n / length)
            let cost = vectors.halfPrecisionCost(elementCount: n)
            if dtype == .bf16 {
                return KernelDeclaration(cost: cost) {
                    NuslerpHalfPrecisionChunkKernel<BF16Rounding>(t: t, vectors: vectors, context: $0)
                }
            }
            return KernelDeclaration(cost: cost) {
                NuslerpHalfPrecisionChunkKernel<F16Rounding>(t: t, vectors: vectors, context: $0)
            }
        }
        if axis == .flattened || n / length <= 1 {
            return KernelDeclaration(cost: InterpolationChunkKernel.cost(elementCount: n)) {
                InterpolationChunkKernel(context: $0) { InterpolationCoefficients.nuslerp(t: t, aa: $0, bb: $1, ab: $2) }
            }
        }
        if axis == .lastDim {
            return KernelDeclaration(cost: KernelCost()) { NuslerpRowsChunkKernel(t: t, rowLength: length, context: $0) }
        }
        return KernelDeclaration(cost: NuslerpColumnsChunkKernel.cost(columns: n / length)) {
            NuslerpColumnsChunkKernel(t: t, columns: n / length, context: $0)
        }
    }
}
