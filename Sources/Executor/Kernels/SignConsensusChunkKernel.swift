import IR

/// TIES sign consensus as tight f32 loops in mergekit's operation order: weight the task vectors, elect a sign
/// per element from their sum, then sum the weighted task vectors that agree with it.
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
                    Self.elect(xs, w.map { Float($0) }, range.lowerBound, range.count, into: p.output + range.lowerBound)
                case .merge(let w, let normalize, let lambda):
                    Self.tiles(range) { start, n, scratch in
                        Self.merge(xs, first: 1, w.map { Float($0) }, normalize, Float(lambda), start, n, scratch,
                                   sign: xs[0] + start, into: p.output + start)
                    }
                case .electAndMerge(let e, let w, let normalize, let lambda):
                    let electWeights = e.map { Float($0) }, weights = w.map { Float($0) }
                    Self.tiles(range) { start, n, scratch in
                        let signs = scratch + 2 * Self.tile
                        Self.elect(xs, electWeights, start, n, into: signs)
                        Self.merge(xs, first: 0, weights, normalize, Float(lambda), start, n, scratch,
                                   sign: UnsafePointer(signs), into: p.output + start)
                    }
                }
            }
        }
    }

    /// Writes ±1 to `o[0..<n]`: the sign of `Σ w[k]·x[k][start + j]` summed in operand order, +1 for zero.
    @inline(__always)
    private static func elect(_ xs: UnsafeBufferPointer<UnsafePointer<Float>>, _ w: [Float], _ start: Int, _ n: Int,
                              into o: UnsafeMutablePointer<Float>) {
        for j in 0..<n { o[j] = 0 }
        for k in 0..<w.count {
            let x = xs[k] + start, c = w[k]
            for j in 0..<n { o[j] += x[j] * c }
        }
        for j in 0..<n { o[j] = o[j] >= 0 ? 1 : -1 }
    }

    /// The disjoint merge of one tile over task vectors `xs[first...]`, with `scratch` for two tiles of sums;
    /// `sign` holds the tile's elected signs.
    @inline(__always)
    private static func merge(_ xs: UnsafeBufferPointer<UnsafePointer<Float>>, first: Int, _ w: [Float],
                              _ normalize: Bool, _ lambda: Float, _ start: Int, _ n: Int,
                              _ scratch: UnsafeMutablePointer<Float>,
                              sign: UnsafePointer<Float>, into o: UnsafeMutablePointer<Float>) {
        let sum = scratch, divisor = scratch + tile
        for j in 0..<n { sum[j] = 0; divisor[j] = 0 }
        for k in 0..<w.count {
            let x = xs[first + k] + start, c = w[k]
            for j in 0..<n {
                // Agrees: nonzero with the elected sign's direction (the sign is ±1, so the product is exact).
                let weighted = x[j] * c
                let agrees = weighted * sign[j] > 0
                sum[j] += agrees ? weighted : 0
                divisor[j] += agrees ? c : 0
            }
        }
        if normalize {
            for j in 0..<n { o[j] = sum[j] / (abs(divisor[j]) < 1e-8 ? 1 : divisor[j]) }
        } else {
            for j in 0..<n { o[j] = sum[j] }
        }
        if lambda != 1 { for j in 0..<n { o[j] *= lambda } }
    }

    /// Elements per tile: three tiles of f32 scratch stay in the L1 cache and on the stack.
    private static let tile = 1024

    /// Runs `body(start, count, scratch)` over tiles of `range` with room for three tiles of f32 in `scratch`.
    private static func tiles(_ range: Range<Int>, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * tile) { scratch in
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(tile, range.upperBound - start)
                body(start, n, scratch.baseAddress!)
                start += n
            }
        }
    }
}
