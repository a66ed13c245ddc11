import Checkpoint
import IR

/// A merge whose result is a linear combination of its operands with coefficients computed from their Gram
/// matrix `G_jk = Σ x_j·x_k` (the spherical means): one pass sums the Gram matrix, then every element is
/// `Σ c_k·x_k` accumulated in f64 from 0 in operand order and rounded to the node's dtype.
final class GramChunkKernel: ChunkKernel {
    /// The terms `(operand, coefficient)` of the result from the Gram matrix (an empty list: zeros).
    typealias Solve = ([[Double]]) throws(ExecutionError) -> [(operand: Int, coefficient: Double)]

    private let context: KernelContext
    private let operands: Int
    private let products: PairProducts
    private let solve: Solve
    private var sums: StreamingSums?
    private var terms: [(operand: Int, coefficient: Double)]?

    init(operands: Int, context: KernelContext, solve: @escaping Solve) {
        self.context = context
        self.operands = operands
        self.solve = solve
        products = PairProducts.gram(operands)
        sums = StreamingSums(elementCount: context.elementCount, width: products.laneCount, memory: context.memory)
    }

    func beginPass() -> Bool { terms == nil }

    func observe(_ chunk: ChunkOperands) throws(ExecutionError) {
        let p = chunk.shared(output: UnsafeMutablePointer(mutating: chunk.pointers[0]))
        let products = self.products
        sums?.add(chunk.range, parallel: context.parallel) { range, acc in
            products.fold(p.inputs, origin: nil, range, into: acc)
        }
    }

    func endPass() throws(ExecutionError) {
        guard let totals = sums?.totals() else { return }
        sums = nil
        terms = try solve(PairProducts.matrix(PairProducts.sums(lanes: totals), count: operands))
    }

    func produce(_ chunk: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = chunk.shared(output: out)
        let terms = Terms(list: (self.terms ?? []).map { (p.inputs[$0.operand], $0.coefficient) })
        let dtype = context.dtype
        context.parallel.forEachBlock(in: chunk.range) { range in
            Self.combine(terms.list, range, into: p.output)
            DTypeConversion.roundInPlace(p.output + range.lowerBound, count: range.count, to: dtype)
        }
    }

    /// The result's terms as (operand pointer, coefficient), handed to the workers.
    private struct Terms: @unchecked Sendable {
        let list: [(UnsafePointer<Float>, Double)]
    }

    /// Elements per tile: the f64 accumulators of one tile stay in the L1 cache.
    private static let tile = 2048

    /// `o[i] = Float(Σ c_k·x_k[i])` for `i` in `range`, each sum in f64 from 0 in term order; a tile at a time,
    /// term by term, so that each loop runs in vector registers (every element still adds its terms in order).
    private static func combine(_ terms: [(UnsafePointer<Float>, Double)], _ range: Range<Int>,
                                into o: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: tile) { buffer in
            let acc = buffer.baseAddress!
            var start = range.lowerBound
            while start < range.upperBound {
                let count = min(tile, range.upperBound - start)
                acc.update(repeating: 0, count: count)
                for (x, c) in terms {
                    let v = x + start
                    for i in 0..<count { acc[i] = acc[i] + c * Double(v[i]) }
                }
                let target = o + start
                for i in 0..<count { target[i] = Float(acc[i]) }
                start += count
            }
        }
    }
}

extension GramChunkKernel {
    /// The Gram matrix's `operands·(operands+1)/2` sums over `n` elements, eight lanes each (`PairProducts`), for
    /// one pass.
    static func cost(elementCount n: Int, operands: Int) -> KernelCost {
        let sums = StreamingSums.bytes(elementCount: n, width: operands * (operands + 1) / 2 * PairProducts.lanes)
        return KernelCost(initialBytes: sums, passBytes: [sums])
    }
}
