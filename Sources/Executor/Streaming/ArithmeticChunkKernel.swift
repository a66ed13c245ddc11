import IR

/// The hot elementwise ops (loads' casts, task-vector differences and sums, scaling, masks, linear mixes)
/// as tight loops over raw pointers, so the compiler can vectorize them; results are rounded to the node's dtype.
final class ArithmeticChunkKernel: ChunkKernel {
    /// What the kernel computes per element.
    enum Formula {
        case copy
        case scale(Float)
        case sub
        case add
        case mul
        /// `Σ c[k]·x[k]`, accumulated in f64 from 0 in operand order.
        case weightedSum([Double])
        /// The population variance across the operands (`PopulationVariance`).
        case variance
        /// mergekit's `linear_merge` on bf16/f16 operands: `Σ w[k]·x[k]` in an f32 accumulator, one fused
        /// multiply-add per operand in operand order, then divided by `divisor` (nil: not normalized).
        case linearMix([Float], divisor: Float?)
    }

    private let formula: Formula
    private let context: KernelContext

    init(_ formula: Formula, context: KernelContext) {
        self.formula = formula
        self.context = context
    }

    /// The node's dtype, which results are rounded to.
    var dtype: DType { context.dtype }

    /// Whether the kernel computes `x − y` (what `LoadSubtractChunkKernel` fuses with a load).
    var isSubtraction: Bool {
        if case .sub = formula { return true }
        return false
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        compute(operands, into: out)
    }

    /// `produce`, which cannot fail: the formula over `operands.range` into `out`, rounded to the node's dtype; `out`
    /// may be operand 0's buffer (each element is read before it is written).
    func compute(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) {
        let formula = self.formula
        if let pair = PairOp(formula), context.dtype == .bf16 || context.dtype == .f16 {
            // Rounded in the same loop, eight lanes at a time, instead of stored and rounded in a second pass.
            return context.forEachLaneRoundedBlock(operands, into: out, pair)
        }
        context.forEachRoundedBlock(operands, into: out) { p, range in
            let o = p.output
            switch formula {
            case .copy:
                let x = p.inputs[0]
                for i in range { o[i] = x[i] }
            case .scale(let s):
                let x = p.inputs[0]
                for i in range { o[i] = x[i] * s }
            case .sub:
                let x = p.inputs[0], y = p.inputs[1]
                for i in range { o[i] = x[i] - y[i] }
            case .add:
                let x = p.inputs[0], y = p.inputs[1]
                for i in range { o[i] = x[i] + y[i] }
            case .mul:
                let x = p.inputs[0], y = p.inputs[1]
                for i in range { o[i] = x[i] * y[i] }
            case .weightedSum(let c):
                ArithmeticChunkKernel.weightedSum(p.inputs, c, into: o, range)
            case .variance:
                PopulationVariance.compute(p.inputs, range, into: o)
            case .linearMix(let w, let divisor):
                ArithmeticChunkKernel.linearMix(p.inputs, w, divisor: divisor, into: o, range)
            }
        }
    }

    /// The two-operand formulas that half-precision merges run most (task vectors, their sums and masks), computed
    /// and rounded to the dtype lane by lane in one loop: the same bits as `forEachRoundedBlock`'s store then
    /// `DTypeConversion.roundInPlace` (the lane roundings are that rounding).
    private enum PairOp: LaneRoundedLoop {
        case sub, add, mul

        init?(_ formula: Formula) {
            switch formula {
            case .sub: self = .sub
            case .add: self = .add
            case .mul: self = .mul
            default: return nil
            }
        }

        @inline(__always)
        func run<R: LaneRounding>(_: R.Type, _ p: SharedPointers, _ range: Range<Int>) {
            switch self {
            case .sub: Self.apply(R.self, p, range) { $0 - $1 }
            case .add: Self.apply(R.self, p, range) { $0 + $1 }
            case .mul: Self.apply(R.self, p, range) { $0 * $1 }
            }
        }

        @inline(__always)
        private static func apply<R: LaneRounding>(_: R.Type, _ p: SharedPointers, _ range: Range<Int>,
                                                   _ op: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) {
            let x = p.inputs[0], y = p.inputs[1], o = p.output
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                let b = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(o + i).storeBytes(of: R.round(op(a, b)), as: SIMD8<Float>.self)
                i += 8
            }
            if i < range.upperBound {
                let lanes = range.upperBound - i
                LaneConversions.store(R.round(op(LaneConversions.load(x, i, lanes), LaneConversions.load(y, i, lanes))),
                                      o, i, lanes)
            }
        }
    }

    /// `Σ c[k]·x[k]` over `range`: operands in runs of up to three per sweep over a block-sized f64 accumulator,
    /// which adds the terms of each element in operand order, as one f64 sum from 0 would.
    private static func weightedSum(_ x: [UnsafePointer<Float>], _ c: [Double], into o: UnsafeMutablePointer<Float>,
                                    _ range: Range<Int>) {
        let tile = 4096
        withUnsafeTemporaryAllocation(of: Double.self, capacity: tile) { acc in
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(range.upperBound, start + tile)
                let n = end - start
                for j in 0..<n { acc[j] = 0 }
                var k = 0
                while k < c.count {
                    switch c.count - k {
                    case 1:
                        let x0 = x[k] + start, c0 = c[k]
                        for j in 0..<n { acc[j] += c0 * Double(x0[j]) }
                        k += 1
                    case 2:
                        let x0 = x[k] + start, x1 = x[k + 1] + start, c0 = c[k], c1 = c[k + 1]
                        for j in 0..<n { acc[j] = (acc[j] + c0 * Double(x0[j])) + c1 * Double(x1[j]) }
                        k += 2
                    default:
                        let x0 = x[k] + start, x1 = x[k + 1] + start, x2 = x[k + 2] + start
                        let c0 = c[k], c1 = c[k + 1], c2 = c[k + 2]
                        for j in 0..<n {
                            acc[j] = ((acc[j] + c0 * Double(x0[j])) + c1 * Double(x1[j])) + c2 * Double(x2[j])
                        }
                        k += 3
                    }
                }
                let out = o + start
                for j in 0..<n { out[j] = Float(acc[j]) }
                start = end
            }
        }
    }

    /// `linear_merge`'s f32 accumulation (`result.addcmul_(tensor, coefficient)`, a fused multiply-add per
    /// operand) then `result.div_(denominator)`, eight elements at a time. Each fused step is computed as
    /// `Float(Double(acc) + Double(x)·Double(w))`: the product of a bf16/f16 operand (at most 11 significant bits)
    /// and an f32 weight is exact in f64, and so is the sum unless the two terms' exponents are more than 18
    /// apart; then only a value landing on an f32 rounding tie could differ from the fused result.
    private static func linearMix(_ x: [UnsafePointer<Float>], _ w: [Float], divisor: Float?,
                                  into o: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        let weights = w.map { SIMD8<Double>(repeating: Double($0)) }
        var j = range.lowerBound
        while j + 8 <= range.upperBound {
            var acc = SIMD8<Float>()
            for k in 0..<weights.count {
                let xk = UnsafeRawPointer(x[k] + j).loadUnaligned(as: SIMD8<Float>.self)
                acc = SIMD8<Float>(SIMD8<Double>(acc) + SIMD8<Double>(xk) * weights[k])
            }
            if let divisor { acc /= SIMD8<Float>(repeating: divisor) }
            UnsafeMutableRawPointer(o + j).storeBytes(of: acc, as: SIMD8<Float>.self)
            j += 8
        }
        while j < range.upperBound {
            var acc: Float = 0
            for k in 0..<w.count { acc = Float(Double(acc) + Double(x[k][j]) * Double(w[k])) }
            if let divisor { acc /= divisor }
            o[j] = acc
            j += 1
        }
    }
}
