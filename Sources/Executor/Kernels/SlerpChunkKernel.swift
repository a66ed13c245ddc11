import Checkpoint
import IR

/// SLERP of two whole tensors (operand 0 the base, at `t = 0`) exactly as mergekit 0.1.5's `slerp` computes it
/// in f32 with PyTorch's AVX2 CPU kernels on one thread, so that its cosine, and with it every coefficient, has
/// mergekit's bits:
///
/// 1. The flat tensor is cut into segments of `segmentElements` (`_CHUNK_ELEMENTS`; a merge's batch holds one
///    tensor). Each segment's L2 norm is `TorchFloat32.NormTwo`; the tensor's norm is that norm again over the
///    segment norms (statistics pass 0). A norm not above 1e-8 (or NaN) is taken as 1.
/// 2. Per segment, `Σ (a/‖a‖)·(b/‖b‖)`, each quotient and product rounded to f32, summed as `torch.sum` sums a
///    contiguous row (`TorchFloat32.rowSum`); the segment sums are summed the same way (statistics pass 1).
/// 3. `dot` clamped to [−1, 1]; linear interpolation when `|dot| > 0.9995`, else `θ = acos(dot)` and the
///    coefficients `sin((1 − t)θ)/sin θ`, `sin(tθ)/sin θ`, all in f32 with SLEEF's `acosf`/`sinf` (`u10`), which
///    PyTorch calls (`TorchFloat32.acos`, `TorchFloat32.sin`).
/// 4. Each element `ca·a + cb·b` (two f32 products, one f32 sum), rounded to the node's dtype.
///
/// A NaN anywhere makes the norm or the dot NaN, and then every element NaN, as in mergekit.
/// Memory: one segment of f32 products (at most 4 MiB) during pass 1.
///
/// bf16 operands kept whole as planes (a chain's stage results) are read from the planes themselves in pass 1 and
/// the output sweep (`readsBF16Planes`), in lanes: the same values, so the same bits (pass 0's norms, summed in
/// PyTorch's order over f32 runs, take them unpacked).
final class SlerpChunkKernel: ChunkKernel {
    /// Elements per segment: mergekit's `_CHUNK_ELEMENTS` (1024 · 1024) divided by the batch's one tensor.
    static let segmentElements = 1 << 20

    private let context: KernelContext
    private let t: Float
    private var pass = -1
    /// Pass 0: each operand's norm of its current segment, and the norms of the segments done.
    private var segmentNorm = [TorchFloat32.NormTwo](), segmentNorms = [[Float]]()
    /// Pass 1: the tensor's norms, the current segment's products and the sums of the segments done.
    private var norms: (Float, Float) = (1, 1)
    private var products: AccountedBuffer<Float>?
    private var dotParts = [Float]()
    private var coefficients: (Float, Float)?

    /// `t` as mergekit's f32 coefficient tensor holds it.
    init(t: Float, context: KernelContext) {
        self.t = t
        self.context = context
    }

    func beginPass() -> Bool {
        guard coefficients == nil else { return false }
        pass += 1
        if pass == 0 {
            let first = min(Self.segmentElements, context.elementCount)
            segmentNorm = [TorchFloat32.NormTwo(length: first), TorchFloat32.NormTwo(length: first)]
            segmentNorms = [[], []]
        } else {
            products = context.memory.allocate(Float.self, count: min(Self.segmentElements, context.elementCount))
        }
        return true
    }

    /// A bf16 merge reads operands kept whole as bf16 planes itself after its norms' pass (asked by the runner as
    /// each sweep starts, after `beginPass`).
    var readsBF16Planes: Bool { context.dtype == .bf16 && pass > 0 }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let sources = (LaneSource(operands, 0), LaneSource(operands, 1))
        var start = operands.range.lowerBound
        while start < operands.range.upperBound {
            let segment = start / Self.segmentElements
            let segmentStart = segment * Self.segmentElements
            let segmentEnd = min(context.elementCount, segmentStart + Self.segmentElements)
            let end = min(operands.range.upperBound, segmentEnd)
            if pass == 0 {
                TorchHalfReductions.feed(&segmentNorm, [p.inputs[0] + start, p.inputs[1] + start], count: end - start,
                                         parallel: context.parallel)
                for k in 0..<2 {
                    if end == segmentEnd {
                        segmentNorms[k].append(segmentNorm[k].norm)
                        segmentNorm[k] = TorchFloat32.NormTwo(length: min(Self.segmentElements, context.elementCount - end))
                    }
                }
            } else if let products {
                let buffer = SendablePointer(products.pointer - segmentStart)
                let (na, nb) = norms
                context.parallel.forEachBlock(in: start..<end) { range in
                    Self.products(sources.0, sources.1, na, nb, range, into: buffer.pointer)
                }
                if end == segmentEnd {
                    dotParts.append(TorchFloat32.rowSum(UnsafeBufferPointer(start: products.pointer,
                                                                            count: segmentEnd - segmentStart)))
                }
            }
            start = end
        }
    }

    func endPass() throws(ExecutionError) {
        if pass == 0 {
            norms = (Self.tensorNorm(segmentNorms[0]), Self.tensorNorm(segmentNorms[1]))
            segmentNorm = []
            segmentNorms = []
        } else {
            products = nil
            let dot = dotParts.withUnsafeBufferPointer { TorchFloat32.rowSum($0) }
            coefficients = context.elementCount == 0 ? (1 - t, t) : Self.coefficients(t: t, dot: dot)
        }
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        guard let (ca, cb) = coefficients else { return }
        let p = operands.shared(output: out)
        let dtype = context.dtype
        if operands.hasPlanes {
            // From the planes in lanes, each result rounded to bf16 (`readsBF16Planes`: bf16 merges only).
            let a = LaneSource(operands, 0), b = LaneSource(operands, 1)
            context.parallel.forEachBlock(in: operands.range) { range in
                let va = SIMD8<Float>(repeating: ca), vb = SIMD8<Float>(repeating: cb)
                LaneConversions.forEachGroup(range) { i, lanes in
                    let mixed = va * a.load(i, lanes) + vb * b.load(i, lanes)
                    LaneConversions.store(BF16Rounding.round(mixed), p.output, i, lanes)
                }
            }
            return
        }
        context.parallel.forEachBlock(in: operands.range) { range in
            let a = p.inputs[0], b = p.inputs[1], o = p.output
            var i = range.lowerBound
            let va = SIMD8<Float>(repeating: ca), vb = SIMD8<Float>(repeating: cb)
            while i + 8 <= range.upperBound {
                let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
                let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(o + i).storeBytes(of: va * x + vb * y, as: SIMD8<Float>.self)
                i += 8
            }
            while i < range.upperBound {
                o[i] = ca * a[i] + cb * b[i]
                i += 1
            }
            DTypeConversion.roundInPlace(o + range.lowerBound, count: range.count, to: dtype)
        }
    }

    /// `(a[i]/na)·(b[i]/nb)` in f32 for `range` (global indices) into `o` (indexed the same way), eight lanes a step,
    /// from chunk buffers or from bf16 planes handed over packed (`LaneSource`).
    @inline(__always)
    private static func products(_ a: LaneSource, _ b: LaneSource, _ na: Float, _ nb: Float,
                                 _ range: Range<Int>, into o: UnsafeMutablePointer<Float>) {
        let va = SIMD8<Float>(repeating: na), vb = SIMD8<Float>(repeating: nb)
        LaneConversions.forEachGroup(range) { i, lanes in
            LaneConversions.store((a.load(i, lanes) / va) * (b.load(i, lanes) / vb), o, i, lanes)
        }
    }

    /// The norm of the segment norms (`vector_norm` of their stack), 1 unless above 1e-8 (`torch.where`).
    static func tensorNorm(_ segmentNorms: [Float]) -> Float {
        var norm = TorchFloat32.NormTwo(length: segmentNorms.count)
        segmentNorms.withUnsafeBufferPointer { norm.add($0.baseAddress!, count: $0.count) }
        let n = segmentNorms.isEmpty ? 0 : norm.norm
        return n > Float(1e-8) ? n : 1
    }

    /// The coefficients `(ca, cb)` from the clamped cosine, in f32 as mergekit's `slerp` computes them.
    static func coefficients(t: Float, dot raw: Float) -> (Float, Float) {
        // `clamp(-1, 1)` keeps NaN.
        let dot = raw < -1 ? -1 : raw > 1 ? 1 : raw
        if abs(dot) > Float(0.9995) { return (1 - t, t) }
        let theta = TorchFloat32.acos(dot)
        let s = TorchFloat32.sin(theta)
        return (TorchFloat32.sin((1 - t) * theta) / s, TorchFloat32.sin(t * theta) / s)
    }
}

extension SlerpChunkKernel {
    /// One segment of f32 products (bytes) during the dot-product pass; nothing during the norms' pass.
    static func cost(elementCount n: Int) -> KernelCost {
        KernelCost(passBytes: [0, min(segmentElements, n) * MemoryLayout<Float>.stride])
    }
}
