import CSignConsensus
import Checkpoint
import IR

/// SCE's final mix (mergekit 0.1.5 `sce_merge`) in streaming form: `operands[0]` is the elected sign (±1), the
/// rest are task vectors; or, `electing` (the `sce_elect_merge` op), the operands are the task vectors (then, with
/// `masked`, their mask) and each element's sign is elected here from their plain sum, as `sign_elect` with weights 1
/// does (f32 from +0 in operand order, ≥ 0 elects +1; in bf16 and f16 the terms are already of the dtype, so nothing
/// is rounded). One pass measures each task vector's mean square over the whole tensor (its weight, normalized); then each element sums `w[k]·tv[k]` over the task vectors whose sign equals the elected one
/// and divides by their weights (clamped to ≥ 1e-6).
///
/// On bf16/f16 merges every op is rounded to the dtype (`R`) as mergekit's tensors are (`HalfPrecision`): the
/// squares `R(x²)`, each model's mean `R(Σ / n)` with the f32 sum in PyTorch's order (`TorchHalfReductions.RowSum`),
/// their sum `R(Σ)` taken to Python (`.item()`), the weights `R(mean / sum)` (or `R(1 / models)` when the sum is
/// below 1e-6), and per element `R(R(Σ_k R(x_k·w_k)) / max(R(Σ_k w_k), R(1e-6)))` over the agreeing models,
/// both sums f32 in model order.
///
/// `masked` (`sce_elect_merge(masked)`, `SCEMaskFusion`): the last operand is SCE's 0/1 `variance_topk` mask, and each
/// task vector is read as its product by the mask (f32, exact: what the `mul`s the pass removed wrote), in the weights'
/// pass and in the mix.
final class SCEMergeChunkKernel: ChunkKernel {
    private let context: KernelContext
    private var squares: StreamingSums?
    private var weights: [Double] = []
    /// bf16/f16: each model's sum of rounded squares in PyTorch's order, and their tile of terms.
    private var halfSums: [TorchHalfReductions.RowSum]?
    private var scratch: AccountedBuffer<Float>?
    private let halfPrecision: Bool
    /// Whether the kernel elects the signs itself; the index of the first task vector among the operands (0 when it
    /// elects, else 1).
    private let electing: Bool, first: Int
    /// Whether the last operand is a 0/1 mask multiplied into every task vector.
    private let masked: Bool

    /// A mix of `models` task vectors, after the elected sign's operand unless `electing`, followed by their mask
    /// when `masked` (which only an electing mix takes).
    init(models: Int, electing: Bool = false, masked: Bool = false, context: KernelContext) {
        self.context = context
        self.electing = electing
        self.masked = masked
        first = electing ? 0 : 1
        let n = context.elementCount
        halfPrecision = context.dtype == .bf16 || context.dtype == .f16
        if halfPrecision {
            halfSums = (0..<models).map { _ in TorchHalfReductions.RowSum(length: n) }
            scratch = context.memory.allocate(Float.self, count: Self.halfScratchCount(elementCount: n, models: models))
        } else {
            squares = StreamingSums(elementCount: n, width: models, memory: context.memory)
        }
    }

    func beginPass() -> Bool { squares != nil || halfSums != nil }

    /// A bf16 merge electing its signs reads task vectors and the mask kept whole as bf16 planes itself, where the
    /// processor runs the mix from planes in C (AVX-512F); elsewhere the C mix of unpacked chunks (AVX2) is faster
    /// than Swift's lanes over planes.
    var readsBF16Planes: Bool { electing && context.dtype == .bf16 && Self.mixesPlanesInC }

    /// Whether this processor runs `mg_sce_mix_bf16_planes`, asked once.
    static let mixesPlanesInC = mg_sce_mix_bf16_planes_available() == 1

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let first = self.first, models = p.inputs.count - first - (masked ? 1 : 0)
        let masked = self.masked
        if halfSums != nil, let scratch {
            let capacity = TorchHalfReductions.tile(elementCount: context.elementCount), dtype = context.dtype
            let parallel = context.parallel
            let sources = (0..<p.inputs.count).map { LaneSource(operands, $0) }
            TorchHalfReductions.inTiles(operands.range, scratch: scratch.pointer, capacity: capacity,
                                        parallel: parallel) { part, tileStart, out in
                let m = masked ? sources[sources.count - 1] : nil
                for k in 0..<models {
                    let o = out + k * capacity + (part.lowerBound - tileStart)
                    if dtype == .bf16 {
                        Self.roundedSquares(BF16Rounding.self, sources[k + first], mask: m, from: part.lowerBound,
                                            into: o, count: part.count)
                    } else {
                        Self.roundedSquares(F16Rounding.self, sources[k + first], mask: m, from: part.lowerBound,
                                            into: o, count: part.count)
                    }
                }
            } consume: { out, count in
                TorchHalfReductions.feed(&halfSums!, tile: out, capacity: capacity, count: count, parallel: parallel)
            }
            return
        }
        squares?.add(operands.range, parallel: context.parallel) { range, acc in
            // Up to three task vectors per loop, so that their sums' additions overlap (each in index order).
            let mask = masked ? p.inputs[p.inputs.count - 1] : nil
            var k = first
            let end = first + models
            while k < end {
                let k1 = min(k + 1, end - 1), k2 = min(k + 2, end - 1)
                let x0 = p.inputs[k], x1 = p.inputs[k1], x2 = p.inputs[k2]
                var s0 = acc[k - first], s1 = acc[k1 - first], s2 = acc[k2 - first]
                if let mask {
                    for i in range {
                        let v0 = Double(x0[i] * mask[i]), v1 = Double(x1[i] * mask[i]), v2 = Double(x2[i] * mask[i])
                        s0 += v0 * v0
                        s1 += v1 * v1
                        s2 += v2 * v2
                    }
                } else {
                    for i in range {
                        let v0 = Double(x0[i]), v1 = Double(x1[i]), v2 = Double(x2[i])
                        s0 += v0 * v0
                        s1 += v1 * v1
                        s2 += v2 * v2
                    }
                }
                // Repeated vectors end equal; the first copy is written last.
                acc[k2 - first] = s2
                acc[k1 - first] = s1
                acc[k - first] = s0
                k += 3
            }
        }
    }

    func endPass() throws(ExecutionError) {
        if let halfSums {
            weights = Self.halfWeights(sums: halfSums.map(\.sum), count: context.elementCount, dtype: context.dtype)
            self.halfSums = nil
            scratch = nil
            return
        }
        weights = Self.weights(squaredNorms: squares?.totals() ?? [], count: context.elementCount)
        squares = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let w = weights
        // A non-finite value in a (masked) task vector makes its mean square, the weights' sum and so every weight
        // NaN; mergekit multiplies the weights by the erase mask (NaN · 0 is NaN), so its whole result is NaN.
        if w.contains(where: \.isNaN) {
            out.initialize(repeating: .nan, count: operands.range.count)
            return
        }
        let electing = self.electing, first = self.first, masked = self.masked
        if halfPrecision {
            let dtype = context.dtype, weights = w.map { Float($0) }
            if operands.hasPlanes {
                producePacked(operands, weights: weights, into: out)
                return
            }
            if dtype == .bf16, CKernelArguments.available, weights.count <= 8 {
                // Every value is rounded where it is computed (the mix stores bf16 values), so the blocks need no
                // rounding pass after.
                let p = operands.shared(output: out)
                context.parallel.forEachBlock(in: operands.range) { range in
                    Self.mixBF16(p, weights: weights, electing: electing, masked: masked, range)
                }
                return
            }
            context.forEachRoundedBlock(operands, into: out) { p, range in
                if dtype == .bf16 {
                    Self.halfMix(BF16Rounding.self, p, weights: weights, electing: electing, masked: masked, range)
                } else {
                    Self.halfMix(F16Rounding.self, p, weights: weights, electing: electing, masked: masked, range)
                }
            }
            return
        }
        context.forEachRoundedBlock(operands, into: out) { p, range in
            // Task vector by task vector over the tile (vectorizable): a term that does not agree adds +0, which
            // changes no sum (they start at +0 and never become −0).
            // Sums and divisors (f64), then the signs and, masked, the products (f32).
            let doubles = Self.tile * (2 + (2 + (masked ? w.count : 0)) / 2)
            withUnsafeTemporaryAllocation(of: Double.self, capacity: doubles) { buffer in
                let sum = buffer.baseAddress!, divisor = sum + Self.tile
                let elected = UnsafeMutableRawPointer(divisor + Self.tile).bindMemory(to: Float.self, capacity: Self.tile)
                var start = range.lowerBound
                // The mask's products as `mul` made them, a tile at a time (`masked`: after the task vectors), in
                // the room after the signs.
                let products = masked
                    ? UnsafeMutableRawPointer(elected + Self.tile).bindMemory(to: Float.self, capacity: w.count * Self.tile)
                    : nil
                func taskVector(_ k: Int, _ start: Int) -> UnsafePointer<Float> {
                    guard let products else { return p.inputs[k + first] + start }
                    return UnsafePointer(products + k * Self.tile)
                }
                while start < range.upperBound {
                    let n = min(Self.tile, range.upperBound - start)
                    if let products {
                        let m = p.inputs[w.count + first] + start
                        for k in 0..<w.count {
                            let x = p.inputs[k] + start, o = products + k * Self.tile
                            for e in 0..<n { o[e] = x[e] * m[e] }
                        }
                    }
                    var sign = UnsafePointer(elected)
                    if electing {
                        // `sign_elect` with weights 1: the f32 sum from +0 in operand order.
                        for e in 0..<n { elected[e] = 0 }
                        for k in 0..<w.count {
                            let x = taskVector(k, start)
                            for e in 0..<n { elected[e] += x[e] }
                        }
                        for e in 0..<n { elected[e] = elected[e] >= 0 ? 1 : -1 }
                    } else {
                        sign = p.inputs[0] + start
                    }
                    for e in 0..<n {
                        sum[e] = 0
                        divisor[e] = 0
                    }
                    for k in 0..<w.count {
                        let x = taskVector(k, start), wk = w[k]
                        for e in 0..<n {
                            let v = x[e], agrees = v != 0 && (v > 0) == (sign[e] > 0)
                            sum[e] += agrees ? wk * Double(v) : 0
                            divisor[e] += agrees ? wk : 0
                        }
                    }
                    let o = p.output + start
                    for e in 0..<n { o[e] = Float(sum[e] / max(divisor[e], 1e-6)) }
                    start += n
                }
            }
        }
    }

    /// Elements of the output computed at a time, task vector by task vector.
    static let tile = 1024

    /// The bf16/f16 squares `R(v·v)` of `v = x[start + i]` (times `mask[start + i]` when given, as the `mul` by
    /// SCE's mask made them) for `i` in `0 ..< count`, into `out[i]`: mergekit's `tvs ** 2` on a half-precision
    /// tensor, in eight lanes.
    @inline(__always)
    static func roundedSquares<R: LaneRounding>(_: R.Type, _ x: LaneSource, mask: LaneSource?, from start: Int,
                                                into out: UnsafeMutablePointer<Float>, count: Int) {
        if let mask {
            LaneConversions.forEachGroup(0..<count) { i, lanes in
                let v = x.load(start + i, lanes) * mask.load(start + i, lanes)
                LaneConversions.store(R.round(v * v), out, i, lanes)
            }
        } else {
            LaneConversions.forEachGroup(0..<count) { i, lanes in
                let v = x.load(start + i, lanes)
                LaneConversions.store(R.round(v * v), out, i, lanes)
            }
        }
    }

    /// `produce` of a bf16 merge some of whose operands the runner handed over as bf16 planes
    /// (`ChunkOperands.planes`): the sixteens of each block in C straight from the planes when every operand is one
    /// and the processor runs `mg_sce_mix_bf16_planes`; else, and for the rest, a tile at a time with the planes
    /// unpacked into a tile buffer and mixed as chunk buffers are (`mixInC`, then `halfMix`). The same bits either
    /// way.
    private func producePacked(_ operands: ChunkOperands, weights: [Float], into out: UnsafeMutablePointer<Float>) {
        let masked = self.masked, models = weights.count
        let planes = (0..<operands.count).map { operands.plane($0).map(SendablePointer.init) }
        let allPlanes = planes.allSatisfy { $0 != nil } && operands.count == models + (masked ? 1 : 0)
        let p = operands.shared(output: out)
        context.parallel.forEachBlock(in: operands.range) { range in
            var rest = range
            if allPlanes, models <= 8 {
                let sixteens = range.count & ~15
                let ran = sixteens > 0 && weights.withUnsafeBufferPointer { w in
                    withUnsafeTemporaryAllocation(of: UnsafePointer<UInt16>?.self, capacity: models) { x in
                        for k in 0..<models { x[k] = planes[k]!.pointer + range.lowerBound }
                        return mg_sce_mix_bf16_planes(UnsafePointer(x.baseAddress), masked ? planes[models]!.pointer + range.lowerBound : nil,
                                                      w.baseAddress, Int32(models), Int64(sixteens),
                                                      p.output + range.lowerBound) == 0
                    }
                }
                if ran { rest = (range.lowerBound + sixteens)..<range.upperBound }
            }
            var start = rest.lowerBound
            while start < rest.upperBound {
                let tile = start..<min(rest.upperBound, start + Self.tile)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: planes.count * Self.tile) { buffer in
                    var inputs = p.inputs
                    for (k, plane) in planes.enumerated() {
                        guard let plane else { continue }
                        let unpacked = buffer.baseAddress! + k * Self.tile - tile.lowerBound
                        BF16Rounding.unpack(plane.pointer, into: unpacked, tile)
                        inputs[k] = UnsafePointer(unpacked)
                    }
                    Self.mixBF16(SharedPointers(inputs: inputs, output: p.output), weights: weights, electing: true,
                                 masked: masked, tile)
                }
                start = tile.upperBound
            }
        }
    }

    /// Per task vector: the mean square (`squaredNorms[k] / count`), normalized to sum to 1; equal weights when
    /// the means add up to less than 1e-6.
    static func weights(squaredNorms: [Double], count: Int) -> [Double] {
        let means = squaredNorms.map { count > 0 ? $0 / Double(count) : 0 }
        let total = means.reduce(0, +)
        if abs(total) < 1e-6 { return [Double](repeating: 1 / Double(means.count), count: means.count) }
        return means.map { $0 / total }
    }
}

extension SCEMergeChunkKernel {
    /// The squared norms of `models` task vectors over `n` elements, for one pass; on bf16/f16 merges
    /// a tile of rounded squares per model instead.
    static func cost(elementCount n: Int, models: Int, dtype: DType) -> KernelCost {
        let bytes = dtype == .bf16 || dtype == .f16
            ? halfScratchCount(elementCount: n, models: models) * 4
            : StreamingSums.bytes(elementCount: n, width: models)
        return KernelCost(initialBytes: bytes, passBytes: [bytes])
    }

    /// Floats of the half-precision pass's tile of squares: one tile per model.
    static func halfScratchCount(elementCount n: Int, models: Int) -> Int {
        max(1, TorchHalfReductions.tile(elementCount: n) * models)
    }

    /// mergekit's `sce_weight` on a bf16/f16 merge, from each model's f32 sum of rounded squares: the means
    /// `R(sum / count)` (torch 2.15's CPU `mean` of a bf16/f16 tensor sums in f32, divides the f32 sum and rounds
    /// once), their sum `R(Σ)` (`torch.sum` of a few values, then `.item()`), and `R(mean / total)`; `R(1 / models)`
    /// each when `|total| < 1e-6`.
    static func halfWeights(sums: [Float], count: Int, dtype: DType) -> [Double] {
        func r(_ x: Float) -> Float { DTypeConversion.round(x, to: dtype) }
        var means = sums.map { r($0 / Float(count)) }
        var total = TorchHalfReductions.RowSum(length: means.count)
        means.withUnsafeMutableBufferPointer { total.add($0.baseAddress!, count: $0.count) }
        let sum = r(total.sum)
        if abs(Double(sum)) < 1e-6 { return [Double](repeating: Double(r(1 / Float(means.count))), count: means.count) }
        return means.map { Double(r($0 / sum)) }
    }

    /// The bf16 mix of `range` (global indices) into `p.output`: `mixInC` where the C kernels run (at most 8 task
    /// vectors), `halfMix` for what it leaves. Every value is rounded where it is computed.
    static func mixBF16(_ p: SharedPointers, weights: [Float], electing: Bool, masked: Bool, _ range: Range<Int>) {
        var rest = range
        if CKernelArguments.available, weights.count <= 8 {
            rest = mixInC(p, weights: weights, electing: electing, masked: masked, range)
        }
        if !rest.isEmpty { halfMix(BF16Rounding.self, p, weights: weights, electing: electing, masked: masked, rest) }
    }

    /// `mg_sce_mix_bf16` over the whole sixteens at the start of `range` (global indices) into `p.output`, electing
    /// the signs itself when `electing`; returns the elements left (fewer than 16, or all of `range` when the C
    /// kernel did not run).
    static func mixInC(_ p: SharedPointers, weights: [Float], electing: Bool, masked: Bool,
                       _ range: Range<Int>) -> Range<Int> {
        let sixteens = range.count & ~15
        guard sixteens > 0 else { return range }
        let first = electing ? 0 : 1
        let mask = masked ? p.inputs[weights.count + first] + range.lowerBound : nil
        let ran = CKernelArguments.with(weights: weights, start: range.lowerBound, operand: { p.inputs[$0 + first] }) {
            w, x in
            mg_sce_mix_bf16(electing ? nil : p.inputs[0] + range.lowerBound, x, mask, w, Int32(weights.count),
                            Int64(sixteens), p.output + range.lowerBound) == 0
        }
        return ran ? (range.lowerBound + sixteens)..<range.upperBound : range
    }

    /// The half-precision mix of `range` (global indices) into `p.output`, eight elements at a time: over the
    /// models whose task vector is nonzero with the elected sign (`p.inputs[0]`, or with `electing` the sign of
    /// the task vectors' f32 sum from +0, ≥ 0 electing +1), `R(Σ R(x·w))` and `R(Σ w)` in f32 in model order,
    /// then `R(sum / max(weights, R(1e-6)))`. With `masked`, each task vector is read times the mask that follows
    /// them among the operands.
    @inline(__always)
    static func halfMix<R: LaneRounding>(_: R.Type, _ p: SharedPointers, weights: [Float], electing: Bool,
                                         masked: Bool = false, _ range: Range<Int>) {
        typealias F = SIMD8<Float>
        let floor = R.round(F(repeating: 1e-6))
        let first = electing ? 0 : 1
        let mask = masked ? p.inputs[weights.count + first] : nil
        @inline(__always) func taskVector(_ k: Int, _ i: Int, _ lanes: Int) -> F {
            let x = LaneConversions.load(p.inputs[k + first], i, lanes)
            guard let mask else { return x }
            return x * LaneConversions.load(mask, i, lanes)
        }
        @inline(__always) func mix(_ i: Int, _ lanes: Int) {
            var sign: F
            if electing {
                var total = F()
                for k in weights.indices { total += taskVector(k, i, lanes) }
                sign = F(repeating: -1).replacing(with: 1, where: total .>= 0)
            } else {
                sign = LaneConversions.load(p.inputs[0], i, lanes)
            }
            var sum = F(), divisor = F()
            for k in weights.indices {
                let x = taskVector(k, i, lanes)
                // mergekit's erase mask: `x.sign() == elected` (a zero task vector never agrees).
                let agrees = (x .> 0 .& sign .> 0) .| (x .< 0 .& sign .< 0)
                let w = F().replacing(with: F(repeating: weights[k]), where: agrees)
                sum += R.round(x * w)
                divisor += w
            }
            let d = R.round(divisor)
            LaneConversions.store(R.round(R.round(sum) / d.replacing(with: floor, where: d .< floor)), p.output, i, lanes)
        }
        LaneConversions.forEachGroup(range, mix)
    }
}
