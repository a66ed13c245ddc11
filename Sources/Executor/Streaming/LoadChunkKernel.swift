import IR

/// Reads a stored tensor chunk by chunk as f32, giving back the mapped pages of each chunk once it is decoded.
final class LoadChunkKernel: ChunkKernel {
    private let model: SafetensorsModel
    private let stored: StoredTensor
    private let memory: MemoryAccount
    private let parallel: Parallel

    init(model: SafetensorsModel, tensor name: String, context: KernelContext) throws(ExecutionError) {
        guard let stored = model.tensor(name) else {
            throw .safetensors(.tensorNotInCheckpoint(directory: model.directory, tensor: name))
        }
        self.model = model
        self.stored = stored
        memory = context.memory
        parallel = context.parallel
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let range = operands.range
        let mapped = range.count * stored.dtype.byteSize
        memory.charge(mapped)
        defer {
            model.releasePages(stored, elements: range)
            memory.release(mapped)
        }
        guard range.upperBound <= stored.elementCount else {
            throw .safetensors(.readOutOfRange(path: model.filePaths[stored.fileIndex], tensor: stored.name,
                                               elementOffset: range.lowerBound, count: range.count,
                                               elementCount: stored.elementCount))
        }
        let model = self.model, stored = self.stored
        let target = SendablePointer(out - range.lowerBound)
        parallel.forEachBlock(in: range) { r in
            try? model.readFloats(stored, elementOffset: r.lowerBound, count: r.count, into: target.pointer + r.lowerBound)
        }
    }
}
