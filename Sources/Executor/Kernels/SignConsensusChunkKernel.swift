import IR

/// TIES sign consensus as tight loops: elect a sign per element, then merge only the task vectors that agree.
final class SignConsensusChunkKernel: ChunkKernel {
    /// Which half of the consensus the kernel computes.
    enum Step {
        /// +1 where `Σ w[k]·x[k] ≥ 0` (in f64, from 0, in operand order), else −1.
        case elect([Double])
        /// `operands[0]` is the elected sign; sums `w[k]·x[k]` of the agreeing task vectors, divides by their
        /// weights when `normalize` (by 1 when none agree), multiplies by `lambda`.
        case merge(weights: [Double], normalize: Bool, lambda: Double)
        /// Both at once over the task vectors alone (the election with `electWeights`): the same bytes as the
        /// two steps, without writing and reading back the signs.
        case electAndMerge(electWeights: [Double], weights: [Double], normalize: Bool, lambda: Double)
    }

    private let step: Step
    private let context: KernelContext

    init(_ step: Step, context: KernelContext) {
        self.step = step
        self.context = context
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let step = self.step
        context.forEachRoundedBlock(operands, into: out) { p, range in
            p.inputs.withUnsafeBufferPointer { xs in
                switch step {
                case .elect(let w):
                    Self.tiles(range) { start, n, sum, _ in
                        for k in 0..<w.count {
                            let x = xs[k] + start, c = w[k]
                            for j in 0..<n { sum[j] += c * Double(x[j]) }
                        }
                        let o = p.output + start
                        for j in 0..<n { o[j] = sum[j] >= 0 ? 1 : -1 }
                    }
                case .merge(let w, let normalize, let lambda):
                    Self.tiles(range) { start, n, sum, divisor in
                        Self.merge(xs, first: 1, w, normalize, lambda, start, n, sum, divisor, sign: xs[0] + start,
                                   into: p.output + start)
                    }
                case .electAndMerge(let e, let w, let normalize, let lambda):
                    Self.tiles(range) { start, n, sum, divisor in
                        for k in 0..<e.count {
                            let x = xs[k] + start, c = e[k]
                            for j in 0..<n { sum[j] += c * Double(x[j]) }
                        }
                        // The elected signs replace the election sums in place.
                        for j in 0..<n { sum[j] = sum[j] >= 0 ? 1 : -1 }
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { signs in
                            for j in 0..<n { signs[j] = Float(sum[j]) }
                            for j in 0..<n { sum[j] = 0 }
                            Self.merge(xs, first: 0, w, normalize, lambda, start, n, sum, divisor,
                                       sign: UnsafePointer(signs.baseAddress!), into: p.output + start)
                        }
                    }
                }
            }
        }
    }

    /// The disjoint merge of one tile over task vectors `xs[first...]`: `sum` and `divisor` start at zero,
    /// `sign` holds the tile's elected signs.
    @inline(__always)
    private static func merge(_ xs: UnsafeBufferPointer<UnsafePointer<Float>>, first: Int, _ w: [Double],
                              _ normalize: Bool, _ lambda: Double, _ start: Int, _ n: Int,
                              _ sum: UnsafeMutablePointer<Double>, _ divisor: UnsafeMutablePointer<Double>,
                              sign: UnsafePointer<Float>, into o: UnsafeMutablePointer<Float>) {
        for k in 0..<w.count {
            let x = xs[first + k] + start, c = w[k]
            for j in 0..<n {
                // Agrees: nonzero with the elected sign's direction (the sign is ±1).
                let weighted = c * Double(x[j])
                let agrees = weighted * Double(sign[j]) > 0
                sum[j] += agrees ? weighted : 0
                divisor[j] += agrees ? c : 0
            }
        }
        for j in 0..<n {
            let d = normalize ? (divisor[j] == 0 ? 1 : divisor[j]) : 1
            o[j] = Float(sum[j] / d * lambda)
        }
    }

    /// Runs `body(start, count, sum, divisor)` over tiles of `range` with zeroed f64 accumulators small enough
    /// for the stack and the L1 cache, so the loops over elements are branch-free and vectorizable.
    private static func tiles(_ range: Range<Int>,
                              _ body: (Int, Int, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void) {
        let tile = 1024
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * tile) { scratch in
            let sum = scratch.baseAddress!, divisor = sum + tile
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(tile, range.upperBound - start)
                for j in 0..<(2 * tile) { scratch[j] = 0 }
                body(start, n, sum, divisor)
                start += n
            }
        }
    }
}
