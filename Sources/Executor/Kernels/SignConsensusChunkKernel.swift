import CSignConsensus
import IR

/// TIES sign consensus and the task-vector mix in mergekit's operation order (`GeneralizedTaskArithmeticMerge`
/// and `get_mask`), on tensors of the node's dtype as mergekit computes them: the weighted task vectors
/// (`deltas.mul_(weights)`) rounded to that dtype, the election sum and the merged sum accumulated in f32 in
/// operand order and rounded once (`sum(dim=0)`), the divisor (`(weights * mask).sum(dim=0)`) rounded, the
/// division rounded, then `lambda` as an f32 scalar. For f32 every rounding is the identity. Eight elements at a
/// time, every model's term kept in registers; TIES in bf16 on two or three task vectors (election and merge weighing
/// alike, `lambda` 1), the bf16 election alone and the bf16 mix without consensus sixteen at a time in C where the
/// processor has AVX-512F (`mg_ties_merge_bf16`, `mg_sign_elect_bf16`, `mg_task_mix_bf16`).
final class SignConsensusChunkKernel: ChunkKernel {
    /// Which half of the consensus the kernel computes.
    enum Step {
        /// +1 where `Σ w[k]·x[k] ≥ 0` (in operand order), else −1.
        case elect([Double])
        /// `operands[0]` is the elected sign; sums `w[k]·x[k]` of the agreeing task vectors, divides by their
        /// weights when `normalize` (by 1 when they sum to 0), multiplies by `lambda`.
        case merge(weights: [Double], normalize: Bool, lambda: Double)
        /// Both at once over the task vectors alone (the election with `electWeights`): the same bytes as the
        /// two steps, without writing and reading back the signs.
        case electAndMerge(electWeights: [Double], weights: [Double], normalize: Bool, lambda: Double)
        /// No consensus: every task vector counts; divides by the weights' sum when `normalize` (by 1 when it is
        /// below 1e-8 in magnitude), multiplies by `lambda` (the `task_mix` op).
        case mix(weights: [Double], normalize: Bool, lambda: Double)
    }

    private let rule: Rule
    private let context: KernelContext

    init(_ step: Step, context: KernelContext) {
        let dtype = context.dtype
        switch step {
        case .elect(let e):
            rule = Rule(elect: e, merge: nil, consensus: true, normalize: false, lambda: 1, dtype: dtype)
        case .merge(let w, let normalize, let lambda):
            rule = Rule(elect: nil, merge: w, consensus: true, normalize: normalize, lambda: lambda, dtype: dtype)
        case .electAndMerge(let e, let w, let normalize, let lambda):
            rule = Rule(elect: e, merge: w, consensus: true, normalize: normalize, lambda: lambda, dtype: dtype)
        case .mix(let w, let normalize, let lambda):
            rule = Rule(elect: nil, merge: w, consensus: false, normalize: normalize, lambda: lambda, dtype: dtype)
        }
        self.context = context
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let rule = self.rule
        if rule.merge == nil {
            // The elected signs are ±1 in every dtype: nothing to round.
            let p = operands.shared(output: out)
            context.parallel.forEachBlock(in: operands.range) { range in rule.run(p, range) }
        } else {
            context.forEachRoundedBlock(operands, into: out) { p, range in rule.run(p, range) }
        }
    }

    /// The step's weights as f32 (as mergekit holds them in a tensor of the merge dtype; the planner has already
    /// rounded them to bf16/f16 for such merges) and what it computes.
    private struct Rule: Sendable {
        /// Weights electing the sign from the task vectors; nil: operand 0 holds the elected sign (or, without
        /// consensus, there is none).
        let elect: [Float]?
        /// Weights of the merge; nil: the output is the elected sign.
        let merge: [Float]?
        /// False: no sign; every task vector is summed (`task_mix`).
        let consensus: Bool
        let normalize: Bool
        let lambda: Float
        /// The dtype every intermediate tensor of mergekit's computation has.
        let dtype: DType
        /// The election and the merge weigh alike (as lowered): the weighted task vectors are computed once.
        let sameWeights: Bool
        /// The C kernel a block's whole sixteens go to on a processor with AVX-512F (the rest to the lanes below;
        /// Swift's lane masks compiled to scalar code when tried); nil: none.
        let inC: CKernel?

        /// The C kernels of `CSignConsensus` this kernel calls.
        enum CKernel {
            /// `mg_ties_merge_bf16`: TIES in bf16 on two or three task vectors, weighing alike, `lambda` 1.
            case ties
            /// `mg_sign_elect_bf16`: the election alone in bf16.
            case elect
            /// `mg_task_mix_bf16`: the mix without consensus (`task_mix`) in bf16 on one to eight task vectors.
            case mix
        }

        init(elect: [Double]?, merge: [Double]?, consensus: Bool, normalize: Bool, lambda: Double, dtype: DType) {
            self.elect = elect?.map { Float($0) }
            self.merge = merge?.map { Float($0) }
            self.consensus = consensus
            self.normalize = normalize
            self.lambda = Float(lambda)
            self.dtype = dtype
            sameWeights = elect != nil && elect == merge
            if dtype != .bf16 || !CKernelArguments.available {
                inC = nil
            } else if sameWeights && consensus && lambda == 1 && (2...3).contains(merge?.count ?? 0) {
                inC = .ties
            } else if consensus && elect != nil && merge == nil {
                inC = .elect
            } else if !consensus && elect == nil && (1...8).contains(merge?.count ?? 0) {
                inC = .mix
            } else {
                inC = nil
            }
        }

        /// Computes elements `range` (global indices) of `p`'s operands into `p.output`, with the rounding of
        /// the dtype.
        func run(_ p: SharedPointers, _ range: Range<Int>) {
            p.inputs.withUnsafeBufferPointer { xs in
                switch dtype {
                case .bf16: run(BF16Rounding.self, xs, range, into: p.output)
                case .f16: run(F16Rounding.self, xs, range, into: p.output)
                default: run(NoRounding.self, xs, range, into: p.output)
                }
            }
        }

        /// Computes elements `range` into `o`, eight at a time, rounding the intermediates with `R`.
        func run<R: LaneRounding>(_ r: R.Type, _ xs: UnsafeBufferPointer<UnsafePointer<Float>>, _ range: Range<Int>,
                                  into o: UnsafeMutablePointer<Float>) {
            let models = merge?.count ?? elect?.count ?? 0
            let sixteens = range.lowerBound..<(range.lowerBound + (range.count & ~15))
            if let inC, R.self == BF16Rounding.self, !sixteens.isEmpty, runInC(inC, xs, sixteens, into: o) {
                let rest = sixteens.upperBound..<range.upperBound
                if !rest.isEmpty { run(R.self, models: models, xs, rest, into: o) }
                return
            }
            // The usual two or three task vectors: with the count a constant, the loops over the models unroll and
            // the weighted task vectors stay in registers.
            if models == 3 {
                run(R.self, models: 3, xs, range, into: o)
            } else if models == 2 {
                run(R.self, models: 2, xs, range, into: o)
            } else {
                run(R.self, models: models, xs, range, into: o)
            }
        }

        /// The C kernel `kernel` over `range` (a multiple of 16 elements long) of the task vectors `xs` into `o`;
        /// false when it did not run.
        private func runInC(_ kernel: CKernel, _ xs: UnsafeBufferPointer<UnsafePointer<Float>>, _ range: Range<Int>,
                            into o: UnsafeMutablePointer<Float>) -> Bool {
            guard let weights = merge ?? elect else { return false }
            let n = Int64(range.count), out = o + range.lowerBound
            return CKernelArguments.with(weights: weights, start: range.lowerBound, operand: { xs[$0] }) { w, x in
                let models = Int32(weights.count)
                switch kernel {
                case .ties: return mg_ties_merge_bf16(x, w, models, normalize ? 1 : 0, n, out) == 0
                case .elect: return mg_sign_elect_bf16(x, w, models, n, out) == 0
                case .mix: return mg_task_mix_bf16(x, w, models, normalize ? 1 : 0, lambda, n, out) == 0
                }
            }
        }

        /// `run` for `models` task vectors (the weights' count).
        @inline(__always)
        private func run<R: LaneRounding>(_ r: R.Type, models: Int, _ xs: UnsafeBufferPointer<UnsafePointer<Float>>,
                                          _ range: Range<Int>, into o: UnsafeMutablePointer<Float>) {
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: max(1, models)) { weighted in
                // A loop of its own: given to `LaneConversions.forEachGroup`, `apply` was called, not inlined, once
                // per eight elements.
                let saved = weighted.baseAddress!
                var j = range.lowerBound
                while j + 8 <= range.upperBound {
                    apply(R.self, models: models, xs, j, 8, into: o, weighted: saved)
                    j += 8
                }
                if j < range.upperBound {
                    apply(R.self, models: models, xs, j, range.upperBound - j, into: o, weighted: saved)
                }
            }
        }

        /// Computes elements `j..<j + lanes` (at most 8) of `models` task vectors into `o`; `saved` holds the weighted
        /// task vectors between the election and the merge when they weigh alike.
        @inline(__always)
        func apply<R: LaneRounding>(_ r: R.Type, models: Int, _ xs: UnsafeBufferPointer<UnsafePointer<Float>>, _ j: Int,
                                    _ lanes: Int, into o: UnsafeMutablePointer<Float>,
                                    weighted saved: UnsafeMutablePointer<SIMD8<Float>>) {
            typealias Lanes = SIMD8<Float>
            var first = 0
            var sign = Lanes(repeating: 1)
            if let elect {
                var sum = Lanes()
                for k in 0..<models {
                    let weighted = R.round(LaneConversions.load(xs[k], j, lanes) * Lanes(repeating: elect[k]))
                    if sameWeights { saved[k] = weighted }
                    sum += weighted
                }
                // `sign_weight >= 0` on the rounded sum has the sign of the f32 sum: a nonzero sum of values of the
                // dtype is at least its smallest subnormal in magnitude, so rounding keeps it nonzero and signed.
                sign = Lanes(repeating: -1).replacing(with: 1, where: sum .>= 0)
            } else if consensus {
                sign = LaneConversions.load(xs[0], j, lanes)
                first = 1
            }
            guard let merge else { return LaneConversions.store(sign, o, j, lanes) }
            var sum = Lanes(), divisor = Lanes()
            for k in 0..<models {
                let c = Lanes(repeating: merge[k])
                let weighted = sameWeights ? saved[k] : R.round(LaneConversions.load(xs[first + k], j, lanes) * c)
                if consensus {
                    // Agrees: nonzero with the elected sign's direction (the sign is ±1, so the product is exact).
                    let agrees = weighted * sign .> 0
                    sum += Lanes().replacing(with: weighted, where: agrees)
                    divisor += Lanes().replacing(with: c, where: agrees)
                } else {
                    sum += weighted
                    divisor += c
                }
            }
            // The last rounding is the output's (`forEachRoundedBlock`).
            if normalize {
                sum = R.round(sum)
                divisor = R.round(divisor)
                // mergekit: `divisor[divisor == 0] = 1` with consensus, `divisor[divisor.abs() < 1e-8] = 1` without.
                let unusable = consensus ? divisor .== 0 : (divisor .< 1e-8) .& (divisor .> -1e-8)
                sum /= divisor.replacing(with: 1, where: unusable)
            }
            if lambda != 1 { sum = R.round(sum) * Lanes(repeating: lambda) }
            LaneConversions.store(sum, o, j, lanes)
        }
    }
}
