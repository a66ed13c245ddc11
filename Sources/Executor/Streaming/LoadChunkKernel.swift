import IR

/// Reads a stored tensor chunk by chunk as f32, through a staging buffer shared by the group's loads.
final class LoadChunkKernel: ChunkKernel {
    private let model: SafetensorsModel
    private let stored: StoredTensor
    private let staging: InputStaging
    private let parallel: Parallel

    init(model: SafetensorsModel, tensor name: String, staging: InputStaging, context: KernelContext) throws(ExecutionError) {
        guard let stored = model.tensor(name) else {
            throw .safetensors(.tensorNotInCheckpoint(directory: model.directory, tensor: name))
        }
        self.model = model
        self.stored = stored
        self.staging = staging
        parallel = context.parallel
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let range = operands.range
        do {
            try model.readFloats(stored, elementOffset: range.lowerBound, count: range.count,
                                 staging: staging.buffer(bytes: range.count * stored.dtype.byteSize),
                                 into: out, parallel: parallel)
        } catch {
            throw .safetensors(error)
        }
    }
}

/// The buffer stored bytes are read into before they are decoded: one per group, reused by every load.
final class InputStaging {
    private let memory: MemoryAccount
    private var storage: AccountedBuffer<UInt8>?

    init(memory: MemoryAccount) { self.memory = memory }

    /// A buffer of at least `bytes` bytes (grown when needed, never shrunk).
    func buffer(bytes: Int) -> UnsafeMutableRawPointer {
        if let storage, storage.count >= bytes { return UnsafeMutableRawPointer(storage.pointer) }
        storage = nil
        let grown = memory.allocate(UInt8.self, count: max(bytes, 1))
        storage = grown
        return UnsafeMutableRawPointer(grown.pointer)
    }
}

extension LoadChunkKernel {
    /// Reads go through the group's staging buffer: `dtype`'s size per chunk element.
    static func cost(stored dtype: DType) -> KernelCost {
        KernelCost(stagingBytesPerElement: dtype.byteSize)
    }
}
