import Checkpoint
import IR

/// NuSLERP of every column (runs along the first dimension; mergekit's `nuslerp_row_wise`): one pass folding
/// each column's Σa², Σb², Σab over the rows in row order, so chunk boundaries do not change the sums.
final class NuslerpColumnsChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let t: Double
    /// Elements per slice along dimension 0: the number of column vectors.
    private let columns: Int
    /// `3·columns` values: the column sums during the pass, then each column's `(ca, cb)`.
    private let state: AccountedBuffer<Double>
    private var ready = false

    init(t: Double, columns: Int, context: KernelContext) {
        self.context = context
        self.t = t
        self.columns = columns
        state = context.memory.allocate(Double.self, count: 3 * columns)
    }

    func beginPass() -> Bool { !ready }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        let p = SharedPointers(inputs: operands.pointers, output: UnsafeMutablePointer(mutating: operands.pointers[0]))
        let sums = SendablePointer(state.pointer)
        let (columns, rows) = (self.columns, operands.range.count / self.columns)
        context.parallel.forEachPart(of: 0..<columns) { part in
            for r in 0..<rows {
                let x = p.inputs[0] + r * columns, y = p.inputs[1] + r * columns
                for c in part {
                    let xc = Double(x[c]), yc = Double(y[c])
                    sums.pointer[3 * c] += xc * xc
                    sums.pointer[3 * c + 1] += yc * yc
                    sums.pointer[3 * c + 2] += xc * yc
                }
            }
        }
    }

    func endPass() throws(ExecutionError) {
        for c in 0..<columns {
            let s = state.pointer + 3 * c
            let (ca, cb) = InterpolationCoefficients.nuslerp(t: t, aa: s[0], bb: s[1], ab: s[2])
            (s[0], s[1]) = (ca, cb)
        }
        ready = true
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let p = SharedPointers(inputs: operands.pointers, output: out)
        let coefficients = SendablePointer(state.pointer)
        let (columns, dtype) = (self.columns, context.dtype)
        context.parallel.forEachPart(of: 0..<(operands.range.count / columns)) { rows in
            let a = p.inputs[0], b = p.inputs[1]
            for r in rows {
                let start = r * columns
                for c in 0..<columns {
                    let ca = coefficients.pointer[3 * c], cb = coefficients.pointer[3 * c + 1]
                    let i = start + c
                    p.output[i] = DTypeConversion.round(Float(ca * Double(a[i]) + cb * Double(b[i])), to: dtype)
                }
            }
        }
    }
}


extension NuslerpColumnsChunkKernel {
    /// Three f64 values per column, through one pass and the output sweep.
    static func cost(columns: Int) -> KernelCost {
        let state = 3 * columns * 8
        return KernelCost(initialBytes: state, passBytes: [state], sweepBytes: state)
    }
}
