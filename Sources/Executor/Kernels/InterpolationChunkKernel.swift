import Checkpoint
import IR

/// Writes `ca·a + cb·b` for two operands, elements rounded to the node's dtype: nuslerp's element formula, with
/// the coefficients of whichever vector an element belongs to.
enum Interpolation {
    /// Writes elements `range` (global indices) of `p.output`.
    @inline(__always)
    static func write(_ p: SharedPointers, _ ca: Double, _ cb: Double, _ range: Range<Int>, _ dtype: DType) {
        let a = p.inputs[0], b = p.inputs[1], o = p.output
        for i in range { o[i] = Float(ca * Double(a[i]) + cb * Double(b[i])) }
        DTypeConversion.roundInPlace(o + range.lowerBound, count: range.count, to: dtype)
    }
}

/// Spherical interpolation of two whole tensors as one vector each (nuslerp of flattened tensors or of a single
/// vector): one pass summing Σa², Σb², Σab, then `ca·a + cb·b` elementwise.
final class InterpolationChunkKernel: ChunkKernel {
    /// The coefficients from `(aa, bb, ab)`.
    typealias Coefficients = @Sendable (Double, Double, Double) -> (Double, Double)

    private let context: KernelContext
    private let coefficients: Coefficients
    private var sums: StreamingSums?
    private var result: (Double, Double)?

    init(context: KernelContext, coefficients: @escaping Coefficients) {
        self.context = context
        self.coefficients = coefficients
        sums = StreamingSums(elementCount: context.elementCount, width: 3 * PairProducts.lanes, memory: context.memory)
    }

    func beginPass() -> Bool { result == nil }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = operands.shared(output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let products = PairProducts([(0, 0), (1, 1), (0, 1)])
        sums?.add(operands.range, parallel: context.parallel) { range, acc in
            products.fold(p.inputs, origin: nil, range, into: acc)
        }
    }

    func endPass() throws(ExecutionError) {
        let s = sums.map { PairProducts.sums(lanes: $0.totals()) } ?? [0, 0, 0]
        result = coefficients(s[0], s[1], s[2])
        sums = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        guard let (ca, cb) = result else { return }
        let p = operands.shared(output: out)
        let dtype = context.dtype
        context.parallel.forEachBlock(in: operands.range) { range in Interpolation.write(p, ca, cb, range, dtype) }
    }
}

extension InterpolationChunkKernel {
    /// Σa², Σb², Σab over `n` elements, for one pass.
    static func cost(elementCount n: Int) -> KernelCost {
        let sums = StreamingSums.bytes(elementCount: n, width: 3 * PairProducts.lanes)
        return KernelCost(initialBytes: sums, passBytes: [sums])
    }
}
