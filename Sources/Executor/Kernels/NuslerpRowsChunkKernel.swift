import IR

/// NuSLERP of every row (runs along the last dimension; mergekit's default `dim=-1`): each row's coefficients
/// come from its own sums, folded over the row in lanes (`PairProducts`). Chunks hold whole rows, so no pass is needed.
final class NuslerpRowsChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let t: Double
    private let rowLength: Int

    init(t: Double, rowLength: Int, context: KernelContext) {
        self.context = context
        self.t = t
        self.rowLength = rowLength
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = operands.shared(output: out)
        let (t, length, dtype) = (self.t, rowLength, context.dtype)
        let products = PairProducts([(0, 0), (1, 1), (0, 1)])
        let rows = (operands.range.lowerBound / length)..<(operands.range.upperBound / length)
        context.parallel.forEachPart(of: rows) { part in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: products.laneCount) { lanes in
                for r in part {
                    let row = (r * length)..<((r + 1) * length)
                    lanes.initialize(repeating: 0)
                    products.fold(p.inputs, origin: nil, row, into: lanes.baseAddress!)
                    let acc = PairProducts.sums(lanes: lanes.baseAddress!, pairs: 3)
                    let (ca, cb) = InterpolationCoefficients.nuslerp(t: t, aa: acc[0], bb: acc[1], ab: acc[2])
                    Interpolation.write(p, ca, cb, row, dtype)
                }
            }
        }
    }
}
