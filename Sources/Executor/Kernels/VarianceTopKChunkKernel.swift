import IR

/// SCE's variance top-k mask (mergekit's `sce_mask`) in streaming form, over the per-element variances its operand
/// holds (a `variance` node): 1 for the `k = min(nonzero, ⌊nonzero · fraction⌋)` elements (the product in float32,
/// as mergekit) of largest variance, equal variances taken from the lower index first, 0 elsewhere; all ones when
/// `fraction ≥ 1`, all zeros when `fraction ≤ 0`. `nonzero` counts the elements of nonzero variance. Passes: the
/// two of a `StreamingSelect` (the first also counts the zero variances) finding the variance at descending rank
/// `k`.
final class VarianceTopKChunkKernel: ChunkKernel {
    /// What the next statistics pass computes.
    private enum Stage {
        case selectHigh, selectLow, done
    }

    private let context: KernelContext
    private let fraction: Double
    /// Whether the mask is all ones (`fraction ≥ 1`).
    private let keepsAll: Bool
    private var stage: Stage
    private var select: StreamingSelect?
    /// How many elements the mask keeps, once known.
    private var k = 0
    /// The kept elements, once known (nil: none, or all with `keepsAll`).
    private var selection: OrderedKeep?

    init(fraction: Double, context: KernelContext) {
        self.context = context
        self.fraction = fraction
        let n = context.elementCount
        keepsAll = fraction >= 1
        if keepsAll {
            stage = .done
        } else if fraction > 0, n > 0 {
            select = StreamingSelect(elementCount: n, threads: context.parallel.threads, memory: context.memory)
            stage = .selectHigh
        } else {
            stage = .done
        }
    }

    func beginPass() -> Bool { stage != .done }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        select?.count(operands.range, VarianceKeys(operands), parallel: context.parallel)
    }

    func endPass() throws(ExecutionError) {
        let n = context.elementCount
        switch stage {
        case .selectHigh:
            select?.finishFirstPass()
            let nonzero = n - (select?.countBelow(bucket: 1) ?? n)
            k = min(nonzero, Int(Float(nonzero) * Float(fraction)))
            // With nothing to keep the second pass still runs (on any rank), so that every tensor makes the
            // passes and holds the memory the kernel's cost declares.
            select?.beginSecondPass(ranks: [n - max(1, k)])
            stage = .selectLow
        case .selectLow:
            let stats = select?.finishSecondPass()
            if k > 0, let t = stats?.first {
                // Of the variances equal to the k-th largest, the lowest indices first.
                let take = k - (n - t.countLess - t.countEqual)
                let rule = KeepRule(low: t.key, lowWindow: take >= t.countEqual ? KeepRule.everything : 0..<take,
                                    high: .max, highWindow: KeepRule.everything)
                selection = OrderedKeep(rule: rule, elementCount: n, memory: context.memory)
            }
            select = nil
            stage = .done
        case .done:
            return
        }
    }

    func beginSweep() { selection?.restart() }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        guard let selection else {
            out.initialize(repeating: keepsAll ? 1 : 0, count: operands.range.count)
            return
        }
        let keys = VarianceKeys(operands)
        selection.scan(operands.range, keys, parallel: context.parallel)
        let o = SendablePointer(out - operands.range.lowerBound)
        let rule = selection.rule
        let low = SIMD8(repeating: rule.low), high = SIMD8(repeating: rule.high), one = Float(1).bitPattern
        context.parallel.forEachAlignedBlock(in: operands.range) { _, range in
            var cursor = selection.cursor(at: range.lowerBound)
            // 1.0's bits where kept, +0 elsewhere, without a branch.
            @inline(__always) func single(_ i: Int, _ key: UInt32) {
                o.pointer[i] = Float(bitPattern: one & cursor.mask(key))
            }
            // Eight at a time by the keys alone where none is a boundary key (whose fate depends on the position
            // among its equals, which the cursor counts).
            keys.forEachLanes(range, lanes: { i, k in
                if LaneMask.any(LaneMask.equal(k, low) | LaneMask.equal(k, high)) {
                    for lane in 0..<8 { single(i + lane, k[lane]) }
                } else {
                    let kept = LaneMask.below(low, k) & LaneMask.below(k, high)
                    UnsafeMutableRawPointer(o.pointer + i).storeBytes(of: kept & SIMD8(repeating: one),
                                                                      as: SIMD8<UInt32>.self)
                }
            }, single: single)
        }
    }
}

/// Variance order keys: 0 for a zero variance, alone in high bucket 0; otherwise the float32 variance's bits
/// (variances are ≥ 0) plus 2¹⁶; NaN last.
struct VarianceKeys: VectorOrderKeys, @unchecked Sendable {
    /// The variances, indexed by global element index.
    let variances: UnsafePointer<Float>

    init(_ operands: ChunkOperands) {
        variances = operands.global(0)
    }

    init(variances: UnsafePointer<Float>) {
        self.variances = variances
    }

    @inline(__always)
    func forEach(_ range: Range<Int>, _ body: (Int, UInt32) -> Void) {
        for i in range {
            let v = variances[i]
            body(i, v.isNaN ? .max : v == 0 ? 0 : v.bitPattern &+ 0x1_0000)
        }
    }

    /// `forEach`'s keys of eight elements, by masks.
    @inline(__always)
    func keys8(_ i: Int) -> SIMD8<UInt32> {
        let bits = UnsafeRawPointer(variances + i).loadUnaligned(as: SIMD8<UInt32>.self)
        let magnitude = bits & 0x7FFF_FFFF
        let nan = LaneMask.below(SIMD8(repeating: 0x7F80_0000), magnitude)
        let zero = LaneMask.equal(magnitude, SIMD8())
        return ((bits &+ 0x1_0000) & ~zero) | nan
    }
}

/// Population variances across operands (`torch.var(dim=0, unbiased=False)`), in f64.
enum PopulationVariance {
    /// The variances across `inputs` (indexed by global element index) of elements `range`, as f32, into `out`
    /// (indexed the same way): per element the mean and the sum of squared deviations, each folded over the
    /// operands in order in f64, then divided by the operand count. Eight elements at a time in f64 lanes; the two
    /// divisions by the count, which bounded the loop, are a product by the reciprocal corrected by one fused
    /// multiply-add, which is the correctly rounded quotient (Markstein's theorem: the reciprocal is correctly
    /// rounded and the first product within an ulp; no operand here is near overflow or underflow), so the bits are
    /// the scalar fold's.
    static func compute(_ inputs: [UnsafePointer<Float>], _ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let m = SIMD8<Double>(repeating: Double(inputs.count))
        let reciprocal = SIMD8<Double>(repeating: 1 / Double(inputs.count))
        /// `a / m`, correctly rounded.
        @inline(__always) func divided(_ a: SIMD8<Double>) -> SIMD8<Double> {
            let q = a * reciprocal
            return q.addingProduct(a.addingProduct(-q, m), reciprocal)
        }
        if inputs.count == 3 {
            // The usual three task vectors, unrolled: the same sums in the same order, without the loops over the
            // operands (their counters and pointer loads were a fifth of the function's time).
            let (x0, x1, x2) = (inputs[0], inputs[1], inputs[2])
            LaneConversions.forEachGroup(range) { i, lanes in
                let a = SIMD8<Double>(LaneConversions.load(x0, i, lanes))
                let b = SIMD8<Double>(LaneConversions.load(x1, i, lanes))
                let c = SIMD8<Double>(LaneConversions.load(x2, i, lanes))
                let mean = divided(((SIMD8<Double>() + a) + b) + c)
                let (da, db, dc) = (a - mean, b - mean, c - mean)
                let squares = ((SIMD8<Double>() + da * da) + db * db) + dc * dc
                LaneConversions.store(SIMD8<Float>(divided(squares)), out, i, lanes)
            }
            return
        }
        inputs.withUnsafeBufferPointer { inputs in
            LaneConversions.forEachGroup(range) { i, lanes in
                var sum = SIMD8<Double>()
                for x in inputs { sum += SIMD8<Double>(LaneConversions.load(x, i, lanes)) }
                let mean = divided(sum)
                var squares = SIMD8<Double>()
                for x in inputs {
                    let d = SIMD8<Double>(LaneConversions.load(x, i, lanes)) - mean
                    squares += d * d
                }
                LaneConversions.store(SIMD8<Float>(divided(squares)), out, i, lanes)
            }
        }
    }
}

extension VarianceTopKChunkKernel {
    /// What the kernel holds for a tensor of `n` elements on `threads` threads: one selection table per worker in
    /// each of its two passes, then the kept-element positions (nothing when `fraction` keeps all or none).
    static func cost(fraction: Double, elementCount n: Int, threads: Int) -> KernelCost {
        guard fraction < 1, fraction > 0, n > 0 else { return KernelCost() }
        let table = StreamingSelect.tableBytes(elementCount: n, threads: threads, slots: 1)
        return KernelCost(passBytes: [table, table], sweepBytes: OrderedKeep.bytes(elementCount: n))
    }
}
