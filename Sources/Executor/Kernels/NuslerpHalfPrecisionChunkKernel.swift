import IR

/// NuSLERP on a bf16 or f16 merge, as mergekit 0.1.5's `nuslerp` computes it on tensors of that dtype: PyTorch's
/// CPU half-precision ops compute each result in f32 and round it to the dtype (`R` below), and its reductions
/// accumulate in f32 and round once. For each vector pair `(a, b)` (operand 0 and 1; the whole tensor when
/// flattened, else each row along the last dimension, or each column along the first for `nuslerp_row_wise`):
///
/// 1. `na = R(√Σa²)` (`torch.norm`, `TorchHalfReductions.NormTwo`; a column's squares add in row order), at least
///    `R(1e-7)` (`clamp(min=1e-7)`, NaN kept); `nb` the same.
/// 2. `cos = R(Σ R(R(a/na)·R(b/nb)))` (`torch.sum` of the unit vectors' product: `TorchHalfReductions.RowSum`, or
///    `ColumnCascade` for columns), clamped to [−1, 1].
/// 3. If `R(1 − R(cos²)) ≤ 1e-16` (colinear): each element `R(R(l₀·a) + R(l₁·b))`, `l₀ = Float(1 − t)` and
///    `l₁ = Float(t)` (Python scalars enter f32 arithmetic as f32).
/// 4. Otherwise `θ = R(acos cos)`, `s = R(sin θ)`, `s₀ = R(sin R(l₀·θ))`, `s₁ = R(sin R(l₁·θ))` (SLEEF's
///    `acosf`/`sinf`, `TorchFloat32`) and each element `R(R(R(s₀·a) + R(s₁·b)) / s)`. Step 3 is this formula
///    with `s₀ = l₀`, `s₁ = l₁`, `s = 1`.
///
/// The sums follow PyTorch's f32 order on one thread, so neither chunks nor threads change them.
/// Passes: two for a whole-tensor vector (the norms, then the cosine), two for columns, none for rows (a chunk
/// holds whole rows). Memory: a tile of f32 products (`TorchHalfReductions.tile` elements) or 36 bytes per
/// column.
final class NuslerpHalfPrecisionChunkKernel<R: LaneRounding>: ChunkKernel {
    private let context: KernelContext
    private let t: Double
    private let vectors: NuslerpVectors
    private var pass = -1
    /// Whole: pass 0's norms, pass 1's cosine sum and its tile of products.
    private var norms: [TorchHalfReductions.NormTwo] = []
    private var cosine: TorchHalfReductions.RowSum?
    private var scratch: AccountedBuffer<Float>?
    private var normValues: (Float, Float) = (1, 1)
    /// Whole: `(s₀, s₁, s)` once the passes are done.
    private var coefficients: (Float, Float, Float)?
    /// Columns: `9·count` f32: the sums of squares, then the norms (`2·count`); the cosine sums' four cascade
    /// levels (`4·count`); then `s₀`, `s₁`, `s` (`3·count`).
    private let columnState: AccountedBuffer<Float>?

    /// `R` rounds to `context.dtype` (`BF16Rounding` or `F16Rounding`).
    init(t: Double, vectors: NuslerpVectors, context: KernelContext) {
        self.context = context
        self.t = t
        self.vectors = vectors
        if case .columns(let count) = vectors {
            columnState = context.memory.allocate(Float.self, count: 9 * count)
            columnState!.pointer.initialize(repeating: 0, count: 9 * count)
        } else {
            columnState = nil
        }
    }

    func beginPass() -> Bool {
        switch vectors {
        case .rows: return false
        case .whole:
            guard coefficients == nil, pass < 1 else { return false }
            pass += 1
            let n = context.elementCount
            if pass == 0 {
                norms = [.init(length: n, dtype: context.dtype), .init(length: n, dtype: context.dtype)]
            } else {
                cosine = .init(length: n)
                scratch = context.memory.allocate(Float.self, count: TorchHalfReductions.tile(elementCount: n))
            }
            return true
        case .columns:
            guard pass < 1 else { return false }
            pass += 1
            return true
        }
    }

    // The executor calls kernels through `ChunkKernel`, which reaches a generic class's unspecialized methods;
    // `@_specialize` gives each method a bf16 and an f16 body that the generic entry dispatches to, so that `R.round`
    // inlines into the vector loops (without it, a third of a bf16 multislerp's time was the rounding's witness call).
    @_specialize(where R == BF16Rounding)
    @_specialize(where R == F16Rounding)
    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let range = operands.range
        switch vectors {
        case .rows: return
        case .whole:
            if pass == 0 {
                TorchHalfReductions.feed(&norms, p.inputs.map { $0 + range.lowerBound }, count: range.count,
                                         parallel: context.parallel)
            } else if let scratch {
                let na = SIMD8(repeating: normValues.0), nb = SIMD8(repeating: normValues.1)
                TorchHalfReductions.inTiles(range, scratch: scratch.pointer, capacity: scratch.count,
                                            parallel: context.parallel) { part, tileStart, out in
                    Self.unitProducts(p.inputs[0], p.inputs[1], part, na, nb, into: out - tileStart)
                } consume: { terms, count in
                    cosine?.add(terms, count: count)
                }
            }
        case .columns(let count):
            guard let columnState else { return }
            let state = SendablePointer(columnState.pointer)
            let first = range.lowerBound / count, rows = range.count / count
            let (pass, total) = (self.pass, context.elementCount / count)
            let schedule = TorchHalfReductions.ColumnCascade(rows: total)
            context.parallel.forEachPart(of: 0..<((count + 7) / 8)) { groups in
                for g in groups {
                    let c = 8 * g, lanes = min(8, count - c)
                    let s = state.pointer
                    if pass == 0 {
                        // `binary_kernel_reduce`: each column's squares in row order, one f32 accumulator.
                        var aa = LaneConversions.load(s, c, lanes), bb = LaneConversions.load(s + count, c, lanes)
                        for r in first..<(first + rows) {
                            let a = LaneConversions.load(p.inputs[0], r * count + c, lanes)
                            let b = LaneConversions.load(p.inputs[1], r * count + c, lanes)
                            aa += a * a
                            bb += b * b
                        }
                        LaneConversions.store(aa, s, c, lanes)
                        LaneConversions.store(bb, s + count, c, lanes)
                    } else {
                        let na = LaneConversions.load(s, c, lanes), nb = LaneConversions.load(s + count, c, lanes)
                        let levels = s + 2 * count
                        var l0 = LaneConversions.load(levels, c, lanes)
                        var l1 = LaneConversions.load(levels + count, c, lanes)
                        var l2 = LaneConversions.load(levels + 2 * count, c, lanes)
                        var l3 = LaneConversions.load(levels + 3 * count, c, lanes)
                        for r in first..<(first + rows) {
                            let a = LaneConversions.load(p.inputs[0], r * count + c, lanes)
                            let b = LaneConversions.load(p.inputs[1], r * count + c, lanes)
                            l0 += R.round(R.round(a / na) * R.round(b / nb))
                            let carries = schedule.carries(afterRows: r + 1)
                            if carries >= 1 { l1 += l0; l0 = SIMD8() }
                            if carries >= 2 { l2 += l1; l1 = SIMD8() }
                            if carries >= 3 { l3 += l2; l2 = SIMD8() }
                        }
                        LaneConversions.store(l0, levels, c, lanes)
                        LaneConversions.store(l1, levels + count, c, lanes)
                        LaneConversions.store(l2, levels + 2 * count, c, lanes)
                        LaneConversions.store(l3, levels + 3 * count, c, lanes)
                    }
                }
            }
        }
    }

    @_specialize(where R == BF16Rounding)
    @_specialize(where R == F16Rounding)
    func endPass() throws(ExecutionError) {
        let t = self.t
        switch vectors {
        case .rows: return
        case .whole:
            if pass == 0 {
                normValues = (Self.norm(sumOfSquares: norms[0].sumOfSquares), Self.norm(sumOfSquares: norms[1].sumOfSquares))
                norms = []
            } else {
                coefficients = Self.coefficients(t: t, dot: cosine?.sum ?? 0)
                cosine = nil
                scratch = nil
            }
        case .columns(let count):
            guard let s = columnState?.pointer else { return }
            for c in 0..<count {
                if pass == 0 {
                    (s[c], s[count + c]) = (Self.norm(sumOfSquares: s[c]), Self.norm(sumOfSquares: s[count + c]))
                } else {
                    let levels = s + 2 * count
                    let dot = ((levels[c] + levels[count + c]) + levels[2 * count + c]) + levels[3 * count + c]
                    (s[6 * count + c], s[7 * count + c], s[8 * count + c]) = Self.coefficients(t: t, dot: dot)
                }
            }
        }
    }

    @_specialize(where R == BF16Rounding)
    @_specialize(where R == F16Rounding)
    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = operands.shared(output: out)
        let (t, dtype) = (self.t, context.dtype)
        switch vectors {
        case .whole:
            guard let (s0, s1, s) = coefficients else { return }
            context.parallel.forEachBlock(in: operands.range) { range in
                Self.write(p, range, SIMD8(repeating: s0), SIMD8(repeating: s1), SIMD8(repeating: s))
            }
        case .rows(let length):
            let rows = (operands.range.lowerBound / length)..<(operands.range.upperBound / length)
            context.parallel.forEachPart(of: rows) { part in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: length) { buffer in
                    for r in part {
                        let row = (r * length)..<((r + 1) * length)
                        let (s0, s1, s) = Self.rowCoefficients(p, row, t: t, dtype: dtype, scratch: buffer.baseAddress!)
                        Self.write(p, row, SIMD8(repeating: s0), SIMD8(repeating: s1), SIMD8(repeating: s))
                    }
                }
            }
        case .columns(let count):
            guard let columnState else { return }
            let f = SendablePointer(columnState.pointer + 6 * count)
            let rows = (operands.range.lowerBound / count)..<(operands.range.upperBound / count)
            context.parallel.forEachPart(of: rows) { part in
                for r in part {
                    var c = 0
                    while c < count {
                        let lanes = min(8, count - c)
                        // Lanes past `lanes` divide 0 by 0 and are not stored.
                        Self.write(p, (r * count + c)..<(r * count + c + lanes),
                                   LaneConversions.load(f.pointer, c, lanes),
                                   LaneConversions.load(f.pointer + count, c, lanes),
                                   LaneConversions.load(f.pointer + 2 * count, c, lanes))
                        c += lanes
                    }
                }
            }
        }
    }
}

extension NuslerpHalfPrecisionChunkKernel {
    /// `R(√s)` from an f32 sum of squares `s`, at least `R(1e-7)`; NaN stays NaN.
    static func norm(sumOfSquares s: Float) -> Float {
        let n = R.round(s.squareRoot())
        let eps = R.round(Float(1e-7))
        return n < eps ? eps : n
    }

    /// `(s₀, s₁, s)` of one vector pair from the f32 sum of its unit vectors' rounded products (steps 2–4).
    static func coefficients(t: Double, dot: Float) -> (Float, Float, Float) {
        func r(_ x: Float) -> Float { R.round(x) }
        let l0 = Float(1 - t), l1 = Float(t)
        let raw = r(dot)
        // `clamp(-1, 1)` keeps NaN.
        let cos: Float = raw < -1 ? -1 : raw > 1 ? 1 : raw
        if r(1 - r(cos * cos)) <= Float(1e-16) { return (l0, l1, 1) }
        let theta = r(TorchFloat32.acos(cos))
        let s = r(TorchFloat32.sin(theta))
        return (r(TorchFloat32.sin(r(l0 * theta))), r(TorchFloat32.sin(r(l1 * theta))), s)
    }

    /// One row's coefficients: its norms, then its cosine (`scratch`: room for the row's products).
    private static func rowCoefficients(_ p: SharedPointers, _ row: Range<Int>, t: Double, dtype: DType,
                                        scratch: UnsafeMutablePointer<Float>) -> (Float, Float, Float) {
        var normA = TorchHalfReductions.NormTwo(length: row.count, dtype: dtype)
        var normB = TorchHalfReductions.NormTwo(length: row.count, dtype: dtype)
        normA.add(p.inputs[0] + row.lowerBound, count: row.count)
        normB.add(p.inputs[1] + row.lowerBound, count: row.count)
        let na = SIMD8(repeating: norm(sumOfSquares: normA.sumOfSquares))
        let nb = SIMD8(repeating: norm(sumOfSquares: normB.sumOfSquares))
        unitProducts(p.inputs[0], p.inputs[1], row, na, nb, into: scratch - row.lowerBound)
        var cosine = TorchHalfReductions.RowSum(length: row.count)
        cosine.add(scratch, count: row.count)
        return coefficients(t: t, dot: cosine.sum)
    }

    /// `R(R(a/na)·R(b/nb))` for `range` (global indices) into `out` (indexed the same way).
    @inline(__always)
    static func unitProducts(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ range: Range<Int>,
                             _ na: SIMD8<Float>, _ nb: SIMD8<Float>, into out: UnsafeMutablePointer<Float>) {
        var i = range.lowerBound
        while i < range.upperBound {
            let lanes = min(8, range.upperBound - i)
            let x = LaneConversions.load(a, i, lanes), y = LaneConversions.load(b, i, lanes)
            let v = R.round(R.round(x / na) * R.round(y / nb))
            LaneConversions.store(v, out, i, lanes)
            i += lanes
        }
    }

    /// `R(R(R(s₀·a) + R(s₁·b)) / s)` into `p.output` for `range` (global indices), eight elements at a time; the
    /// coefficients per lane (lane `l` for element `range.lowerBound + l` of each group when they vary by column).
    @inline(__always)
    static func write(_ p: SharedPointers, _ range: Range<Int>,
                      _ s0: SIMD8<Float>, _ s1: SIMD8<Float>, _ s: SIMD8<Float>) {
        var i = range.lowerBound
        while i < range.upperBound {
            let lanes = min(8, range.upperBound - i)
            let a = LaneConversions.load(p.inputs[0], i, lanes), b = LaneConversions.load(p.inputs[1], i, lanes)
            let v = R.round(R.round(R.round(s0 * a) + R.round(s1 * b)) / s)
            LaneConversions.store(v, p.output, i, lanes)
            i += lanes
        }
    }
}

/// How nuslerp splits a tensor into vectors (`NuslerpHalfPrecisionChunkKernel`).
enum NuslerpVectors: Equatable {
    /// One vector: the flattened tensor.
    case whole
    /// Each run of `length` elements along the last dimension.
    case rows(length: Int)
    /// Each of `count` vectors along the first dimension (element `i` belongs to vector `i mod count`).
    case columns(count: Int)
}

extension NuslerpVectors {
    /// Bytes `NuslerpHalfPrecisionChunkKernel` holds: a tile of products (whole vectors) or 36 per column.
    func halfPrecisionCost(elementCount n: Int) -> KernelCost {
        switch self {
        case .rows: return KernelCost()
        case .whole:
            return KernelCost(passBytes: [0, TorchHalfReductions.tile(elementCount: n) * 4])
        case .columns(let count):
            let bytes = count * 9 * 4
            return KernelCost(initialBytes: bytes, passBytes: [bytes, bytes], sweepBytes: bytes)
        }
    }
}
