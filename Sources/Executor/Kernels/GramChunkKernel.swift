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
        sums = StreamingSums(elementCount: context.elementCount, width: products.pairs.count, memory: context.memory)
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
        terms = try solve(PairProducts.matrix(totals, count: operands))
    }

    func produce(_ chunk: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = chunk.shared(output: out)
        let terms = self.terms ?? []
        let indices = terms.map(\.operand), coefficients = terms.map(\.coefficient)
        let dtype = context.dtype
        context.parallel.forEachBlock(in: chunk.range) { range in
            for i in range {
                var acc = 0.0
                for k in indices.indices { acc += coefficients[k] * Double(p.inputs[indices[k]][i]) }
                p.output[i] = DTypeConversion.round(Float(acc), to: dtype)
            }
        }
    }
}

extension GramChunkKernel {
    /// The Gram matrix's `operands·(operands+1)/2` sums over `n` elements, for one pass.
    static func cost(elementCount n: Int, operands: Int) -> KernelCost {
        let sums = StreamingSums.bytes(elementCount: n, width: operands * (operands + 1) / 2)
        return KernelCost(initialBytes: sums, passBytes: [sums])
    }
}
