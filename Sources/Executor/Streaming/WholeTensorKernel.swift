import IR

/// Runs a whole-tensor kernel inside the streaming executor: gathers every operand in one pass, computes the
/// result, then hands it out chunk by chunk. Holds whole tensors; for ops without a streaming kernel yet.
final class WholeTensorKernel: ChunkKernel {
    private let op: Op
    private let context: KernelContext
    private var operands: [TensorBuffer] = []
    private var result: TensorBuffer?
    private var gathered = false

    init(op: Op, context: KernelContext) {
        self.op = op
        self.context = context
    }

    func beginPass() -> Bool { !gathered }

    func observe(_ chunk: ChunkOperands) throws(ExecutionError) {
        if operands.isEmpty {
            operands = chunk.pointers.map { _ in TensorBuffer(count: context.elementCount) }
            context.memory.charge(chunk.count * context.elementCount * 4)
        }
        for (k, p) in chunk.pointers.enumerated() {
            (operands[k].pointer + chunk.range.lowerBound).update(from: p, count: chunk.range.count)
        }
    }

    func endPass() throws(ExecutionError) {
        gathered = true
        result = try NodeEvaluator.evaluate(op, shape: context.shape, dtype: context.dtype, operands: operands,
                                            parallel: context.parallel)
        context.memory.release(operands.count * context.elementCount * 4)
        operands = []
        context.memory.charge(context.elementCount * 4)
    }

    func produce(_ chunk: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        guard let result else { return }
        out.update(from: result.pointer + chunk.range.lowerBound, count: chunk.range.count)
    }

    deinit {
        if result != nil { context.memory.release(context.elementCount * 4) }
    }
}
