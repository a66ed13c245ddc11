import Checkpoint
import IR
import Synchronization

/// A kernel that reads input checkpoints and notes whether what it read held an infinite or NaN value (a merged
/// output may have such values only when an input it is computed from had them).
protocol InputReadingKernel: ChunkKernel {
    /// Whether a read held an infinite or NaN value (when the kernel checks).
    var sawNonFinite: Bool { get }
}

/// Reads a stored tensor chunk by chunk as f32, through a staging buffer shared by the group's loads: each chunk's
/// bytes are read with `pread` through the model's `CheckpointReader`, in parallel blocks, and decoded exactly.
final class LoadChunkKernel: InputReadingKernel {
    private let reader: any CheckpointReader
    private let stored: StoredTensor
    private let staging: InputStaging
    private let parallel: Parallel
    /// Whether chunks are scanned for infinite and NaN values (`sawNonFinite`).
    private let checksFinite: Bool
    /// Set once a chunk read held an infinite or NaN value (when `checksFinite`).
    private(set) var sawNonFinite = false

    init(reader: any CheckpointReader, tensor name: String, staging: InputStaging, context: KernelContext,
         checksFinite: Bool = false) throws(ExecutionError) {
        guard let stored = reader.tensor(name) else {
            throw .checkpoint(.tensorNotInCheckpoint(directory: reader.directory, tensor: name))
        }
        // The node reads the whole tensor, or its first rows (`--unsafe-truncate-embeddings`): row-major storage
        // puts them first.
        let shape = context.shape
        guard shape == stored.shape || (shape.count == stored.shape.count && shape.count >= 1
                                         && shape.dropFirst() == stored.shape.dropFirst() && shape[0] <= stored.shape[0]) else {
            throw .planMismatch("tensor '\(name)' of \(reader.directory) is \(stored.shape) on disk, the plan reads \(shape)")
        }
        self.reader = reader
        self.stored = stored
        self.staging = staging
        self.checksFinite = checksFinite
        parallel = context.parallel
    }

    /// Whether the load's one consumer reads the tensor itself, through `produce(_:into:eachBlock:)`
    /// (`LoadSubtractChunkKernel`): then `produce` leaves its chunk buffer untouched.
    var readByConsumer = false

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        if readByConsumer { return }
        try produce(operands, into: out, eachBlock: nil)
    }

    /// The dtype the tensor is stored in.
    var storedDType: DType { stored.dtype }

    /// Reads the chunk `operands.range` of a bf16 tensor (`storedDType`) into the group's staging buffer in
    /// parallel blocks without decoding it, and calls `eachBlock(halves, r)` on the thread that read each block
    /// right after it (`halves`: the block's bit patterns; `r`: its chunk-relative elements); with the non-finite
    /// check on, the block's stored values are scanned first (`FiniteCheck.bf16NonFinite`).
    /// - Throws: `ExecutionError.checkpoint` naming the file and tensor when a read fails;
    ///   `ExecutionError.planMismatch` when the tensor is not stored as bf16.
    func readBF16(_ operands: ChunkOperands,
                  eachBlock: @Sendable (UnsafePointer<UInt16>, Range<Int>) -> Void) throws(ExecutionError) {
        guard stored.dtype == .bf16 else {
            throw .planMismatch("a bf16 read of a tensor stored as \(stored.dtype)")
        }
        try readBlocks(operands) { block, r, checks in
            // The staging buffer is the pool's (aligned) and blocks start at even byte offsets.
            let halves = UnsafePointer(UnsafeRawPointer(block).assumingMemoryBound(to: UInt16.self))
            defer { eachBlock(halves, r) }
            return checks && FiniteCheck.bf16NonFinite(halves, count: r.count)
        }
    }

    /// Reads and decodes the chunk `operands.range` into `out` in parallel blocks, calling `eachBlock(r)` on the
    /// thread that decoded each block right after it (`r`: the block's chunk-relative elements), while the block
    /// is in that core's cache.
    /// - Throws: `ExecutionError.checkpoint` naming the file and tensor when a read fails.
    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>,
                 eachBlock: (@Sendable (Range<Int>) -> Void)?) throws(ExecutionError) {
        let target = SendablePointer(out), dtype = stored.dtype
        try readBlocks(operands) { block, r, checks in
            DTypeConversion.decode(block, dtype: dtype, count: r.count, into: target.pointer + r.lowerBound)
            defer { eachBlock?(r) }
            return checks && FiniteCheck.exceeds(target.pointer + r.lowerBound, count: r.count,
                                                 limitBits: Float.infinity.bitPattern)
        }
    }

    /// Reads the chunk `operands.range`'s stored bytes into the group's staging buffer in parallel blocks and calls
    /// `block(bytes, r, checks)` for each on the thread that read it; with `checks` (the kernel checks for
    /// non-finite values) `block` returns whether the block held an infinite or NaN value, noted in `sawNonFinite`.
    /// - Throws: `ExecutionError.checkpoint` naming the file and tensor when a read fails.
    private func readBlocks(_ operands: ChunkOperands,
                            _ block: @Sendable (UnsafeMutablePointer<UInt8>, Range<Int>, Bool) -> Bool)
        throws(ExecutionError) {
        let range = operands.range
        let source = SendablePointer(staging.buffer(bytes: range.count * stored.dtype.byteSize)
            .assumingMemoryBound(to: UInt8.self))
        let nonFinite = Atomic<Bool>(false), checks = checksFinite
        try StoredBlocks.read(stored, from: reader, elements: range, into: source.pointer, parallel: parallel) { bytes, r in
            if block(bytes, r, checks) { nonFinite.store(true, ordering: .relaxed) }
        }
        if nonFinite.load(ordering: .relaxed) { sawNonFinite = true }
    }
}

/// Reading a stored tensor's elements with `pread` in parallel blocks, for the load kernels.
enum StoredBlocks {
    /// Reads elements `range` of `stored` through `reader` into `destination` (their bytes, packed from its start),
    /// in blocks of `Parallel.blockSize` elements on `parallel`'s threads, and calls `decoded(block, elements)` for
    /// each block once its bytes are in (`block` points at them; `elements` are its chunk-relative indices).
    /// - Throws: `ExecutionError.checkpoint` naming the file and tensor for a range outside the tensor or a failed
    ///   read (the first error of any block).
    static func read(_ stored: StoredTensor, from reader: any CheckpointReader, elements range: Range<Int>,
                     into destination: UnsafeMutablePointer<UInt8>, parallel: Parallel,
                     decoded: @Sendable (UnsafeMutablePointer<UInt8>, Range<Int>) -> Void = { _, _ in })
        throws(ExecutionError) {
        let size = stored.dtype.byteSize
        let bytes: Range<Int>
        do {
            bytes = try reader.byteRange(of: stored, elementOffset: range.lowerBound, count: range.count)
        } catch {
            throw .checkpoint(error)
        }
        let target = SendablePointer(destination)
        let (fileIndex, start) = (stored.fileIndex, bytes.lowerBound)
        let failure = Mutex<CheckpointError?>(nil)
        parallel.forEachBlock(count: range.count) { r in
            let block = target.pointer + r.lowerBound * size
            do throws(CheckpointError) {
                try reader.readBytes(fileIndex: fileIndex, offset: start + r.lowerBound * size, count: r.count * size,
                                     into: block)
            } catch {
                failure.withLock { $0 = $0 ?? error }
                return
            }
            decoded(block, r)
        }
        if let error = failure.withLock({ $0 }) { throw .checkpoint(error) }
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
