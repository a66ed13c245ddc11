import IR

/// TIES sign consensus in mergekit's f32 operation order: weight the task vectors, elect a sign per element from
/// their sum, then sum the weighted task vectors that agree with it. Eight elements at a time, every model's
/// term kept in registers.
final class SignConsensusChunkKernel: ChunkKernel {
    /// Which half of the consensus the kernel computes.
    enum Step {
        /// +1 where `Σ w[k]·x[k] ≥ 0` (f32, in operand order), else −1.
        case elect([Double])
        /// `operands[0]` is the elected sign; sums `w[k]·x[k]` of the agreeing task vectors, divides by their
        /// weights when `normalize` (by 1 when they are below 1e-8), multiplies by `lambda`.
        case merge(weights: [Double], normalize: Bool, lambda: Double)
        /// Both at once over the task vectors alone (the election with `electWeights`): the same bytes as the
        /// two steps, without writing and reading back the signs.
        case electAndMerge(electWeights: [Double], weights: [Double], normalize: Bool, lambda: Double)
    }

    private let rule: Rule
    private let context: KernelContext

    init(_ step: Step, context: KernelContext) {
        switch step {
        case .elect(let e):
            rule = Rule(elect: e, merge: nil, normalize: false, lambda: 1)
        case .merge(let w, let normalize, let lambda):
            rule = Rule(elect: nil, merge: w, normalize: normalize, lambda: lambda)
        case .electAndMerge(let e, let w, let normalize, let lambda):
            rule = Rule(elect: e, merge: w, normalize: normalize, lambda: lambda)
        }
        self.context = context
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let rule = self.rule
        context.forEachRoundedBlock(operands, into: out) { p, range in
            p.inputs.withUnsafeBufferPointer { xs in
                var j = range.lowerBound
                while j < range.upperBound {
                    let lanes = min(8, range.upperBound - j)
                    rule.apply(xs, j, lanes, into: p.output)
                    j += lanes
                }
            }
        }
    }

    /// The step's weights as f32 (as mergekit rounds them to the tensors' dtype) and what it computes.
    private struct Rule: Sendable {
        /// Weights electing the sign from the task vectors; nil: operand 0 holds the elected sign.
        let elect: [Float]?
        /// Weights of the merge; nil: the output is the elected sign.
        let merge: [Float]?
        let normalize: Bool
        let lambda: Float

        init(elect: [Double]?, merge: [Double]?, normalize: Bool, lambda: Double) {
            self.elect = elect?.map { Float($0) }
            self.merge = merge?.map { Float($0) }
            self.normalize = normalize
            self.lambda = Float(lambda)
        }

        /// Computes elements `j..<j + lanes` (at most 8) into `o`.
        @inline(__always)
        func apply(_ xs: UnsafeBufferPointer<UnsafePointer<Float>>, _ j: Int, _ lanes: Int,
                   into o: UnsafeMutablePointer<Float>) {
            typealias Lanes = SIMD8<Float>
            let first: Int
            var sign: Lanes
            if let elect {
                var sum = Lanes()
                for k in 0..<elect.count { sum += load(xs[k], j, lanes) * Lanes(repeating: elect[k]) }
                sign = Lanes(repeating: -1).replacing(with: 1, where: sum .>= 0)
                first = 0
            } else {
                sign = load(xs[0], j, lanes)
                first = 1
            }
            guard let merge else { return store(sign, o, j, lanes) }
            var sum = Lanes(), divisor = Lanes()
            for k in 0..<merge.count {
                let c = Lanes(repeating: merge[k])
                let weighted = load(xs[first + k], j, lanes) * c
                // Agrees: nonzero with the elected sign's direction (the sign is ±1, so the product is exact).
                let agrees = weighted * sign .> 0
                sum += Lanes().replacing(with: weighted, where: agrees)
                divisor += Lanes().replacing(with: c, where: agrees)
            }
            if normalize {
                sum /= divisor.replacing(with: 1, where: (divisor .< 1e-8) .& (divisor .> -1e-8))
            }
            if lambda != 1 { sum *= Lanes(repeating: lambda) }
            store(sum, o, j, lanes)
        }

        @inline(__always)
        private func load(_ x: UnsafePointer<Float>, _ j: Int, _ lanes: Int) -> SIMD8<Float> {
            if lanes == 8 { return UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self) }
            var v = SIMD8<Float>()
            for l in 0..<lanes { v[l] = x[j + l] }
            return v
        }

        @inline(__always)
        private func store(_ v: SIMD8<Float>, _ o: UnsafeMutablePointer<Float>, _ j: Int, _ lanes: Int) {
            if lanes == 8 { return UnsafeMutableRawPointer(o + j).storeBytes(of: v, as: SIMD8<Float>.self) }
            for l in 0..<lanes { o[j + l] = v[l] }
        }
    }
}
