import Dispatch
import IR
import Synchronization

/// Streams tensors into one safetensors file whose layout (names, dtypes, shapes, order) is fixed when it is created.
/// Converted bytes are written in the background through `scratchCount` buffers, so a writer holds `byteCount` bytes.
public final class SafetensorsWriter: CheckpointShardWriter {
    /// One tensor's place in the file being written.
    private struct Slot {
        let name: String
        let dtype: DType
        let elementCount: Int
        /// Bytes from the start of the data buffer.
        let dataOffset: Int
    }

    /// The file being written.
    public let path: String
    private let output: OutputFile
    private let slots: [Slot]
    private let slotIndexByName: [String: Int]
    private let dataStart: Int
    /// Elements written so far per tensor (tensors are written front to back).
    private var written: [Int]
    /// Tensors whose every element is written.
    private var complete: [Bool]
    /// Conversion buffers, used in turn: the bytes of one are written in the background while the next fills.
    private let scratch: [UnsafeMutableRawPointer]
    private var nextScratch = 0
    private let queue = DispatchQueue(label: "mergegraph.safetensors-writer")
    private let freeScratch: DispatchSemaphore
    private let failure = FirstFailure()
    /// Sees each piece after its write (on `queue`, in order).
    private let observer: (any ShardBytesObserver)?

    /// Bytes converted per `pwrite`.
    private static let scratchByteCount = 1 << 20
    /// Conversion buffers per writer; their total bounds the writer's memory.
    public static let scratchCount = 3
    /// The memory a writer holds, in bytes (3 MiB): the one constant the planner budgets per open shard
    /// (through `StreamingCostModel.bytesPerOpenShard`) and the executor charges.
    public static let byteCount = scratchCount * scratchByteCount

    /// Lays out `tensors` in order, creates `path` and writes its header (padded so the data starts 8-byte aligned)
    /// with `metadata` as `__metadata__` (omitted when empty); `observer` (if any) sees the header and every piece
    /// written after it (`ShardBytesObserver`).
    /// - Throws: `CheckpointError` naming `path`: a tensor listed twice, an invalid shape, a failed create or write.
    public init(
        path: String,
        tensors: [(name: String, dtype: DType, shape: [Int])],
        metadata: [String: String] = ["format": "pt"],
        observer: (any ShardBytesObserver)? = nil
    ) throws(CheckpointError) {
        var slots: [Slot] = []
        var slotIndexByName: [String: Int] = [:]
        var entries: [String] = []
        var dataOffset = 0
        for tensor in tensors {
            guard slotIndexByName[tensor.name] == nil else {
                throw .duplicateTensorInLayout(path: path, tensor: tensor.name)
            }
            guard let byteCount = tensor.dtype.storageByteCount(shape: tensor.shape) else {
                throw .invalidShape(path: path, tensor: tensor.name, shape: tensor.shape)
            }
            let shapeText = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(
                "\(JSONValue.quote(tensor.name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shapeText)],"
                    + "\"data_offsets\":[\(dataOffset),\(dataOffset + byteCount)]}")
            slotIndexByName[tensor.name] = slots.count
            slots.append(Slot(
                name: tensor.name, dtype: tensor.dtype,
                elementCount: byteCount / tensor.dtype.byteSize, dataOffset: dataOffset))
            dataOffset += byteCount
        }
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(JSONValue.quote($0.key)):\(JSONValue.quote($0.value))" }
            entries.insert("\"__metadata__\":{\(pairs.joined(separator: ","))}", at: 0)
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        while (8 + header.count) % 8 != 0 { header.append(UInt8(ascii: " ")) }

        let output = try OutputFile(creating: path)
        let headerBytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        try output.write(headerBytes, at: 0)
        headerBytes.withUnsafeBytes { observer?.wrote($0, at: 0) }

        self.path = path
        self.output = output
        self.slots = slots
        self.slotIndexByName = slotIndexByName
        self.dataStart = 8 + header.count
        self.written = Array(repeating: 0, count: slots.count)
        self.complete = Array(repeating: false, count: slots.count)
        self.scratch = (0..<Self.scratchCount).map { _ in .allocate(byteCount: Self.scratchByteCount, alignment: OutputFile.uncachedAlignment) }
        self.freeScratch = DispatchSemaphore(value: Self.scratchCount)
        self.observer = observer
    }

    deinit {
        queue.sync {}
        for buffer in scratch { buffer.deallocate() }
    }

    /// Converts `floats` to the tensor's dtype and writes them as the whole tensor; each tensor exactly once, in any order.
    /// - Throws: `CheckpointError` naming the file and tensor: not in the layout, wrong element count, already written.
    public func write(_ name: String, floats: UnsafeBufferPointer<Float>) throws(CheckpointError) {
        guard let index = slotIndexByName[name] else { throw .unknownTensor(path: path, tensor: name) }
        guard floats.count == slots[index].elementCount else {
            throw .elementCountMismatch(path: path, tensor: name, expected: slots[index].elementCount, actual: floats.count)
        }
        try write(name, elementOffset: 0, floats: floats)
    }

    /// Converts `floats` to the tensor's dtype and writes them as elements `elementOffset…` of the tensor; the
    /// pieces of one tensor come front to back, each element exactly once.
    /// - Throws: `CheckpointError` naming the file and tensor: not in the layout, not the next range, past the end,
    ///   or a background write that failed.
    public func write(_ name: String, elementOffset: Int, floats: UnsafeBufferPointer<Float>) throws(CheckpointError) {
        let (index, slot) = try nextRange(name, elementOffset: elementOffset, count: floats.count)
        if let source = floats.baseAddress {
            try writeInPieces(count: floats.count, dtype: slot.dtype,
                              at: dataStart + slot.dataOffset + elementOffset * slot.dtype.byteSize) { done, chunk, buffer in
                DTypeConversion.encode(source + done, count: chunk, as: slot.dtype, into: buffer)
            }
        }
        written[index] += floats.count
        complete[index] = written[index] == slot.elementCount
    }

    /// Writes `bytes` (whole elements of the tensor's stored dtype, little-endian) as elements `elementOffset…` of
    /// the tensor unchanged: the path of integer and BOOL tensors, copied byte for byte. Same order rules as floats.
    /// - Throws: `CheckpointError` naming the file and tensor: not in the layout, a byte count that is not a whole
    ///   number of elements (`.elementCountMismatch`), not the next range, past the end, a failed background write.
    public func write(_ name: String, elementOffset: Int, bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard let index = slotIndexByName[name] else { throw .unknownTensor(path: path, tensor: name) }
        let size = slots[index].dtype.byteSize
        guard bytes.count % size == 0 else {
            throw .elementCountMismatch(path: path, tensor: name, expected: slots[index].elementCount,
                                        actual: elementOffset + bytes.count / size)
        }
        let count = bytes.count / size
        let (_, slot) = try nextRange(name, elementOffset: elementOffset, count: count)
        if let source = bytes.baseAddress {
            try writeInPieces(count: count, dtype: slot.dtype,
                              at: dataStart + slot.dataOffset + elementOffset * size) { done, chunk, buffer in
                buffer.copyMemory(from: source + done * size, byteCount: chunk * size)
            }
        }
        written[index] += count
        complete[index] = written[index] == slot.elementCount
    }

    /// The slot of `name` after checking `[elementOffset, elementOffset + count)` is its next unwritten range.
    private func nextRange(_ name: String, elementOffset: Int, count: Int) throws(CheckpointError) -> (Int, Slot) {
        guard let index = slotIndexByName[name] else { throw .unknownTensor(path: path, tensor: name) }
        let slot = slots[index]
        guard !complete[index], elementOffset == written[index] else {
            throw .tensorAlreadyWritten(path: path, tensor: name)
        }
        guard elementOffset + count <= slot.elementCount else {
            throw .elementCountMismatch(path: path, tensor: name, expected: slot.elementCount, actual: elementOffset + count)
        }
        return (index, slot)
    }

    /// Checks every tensor was written (a tensor of no elements need not be: it has no bytes), then closes the file.
    /// - Throws: `CheckpointError.tensorNotWritten`, `.writeFailed` (a background write or the close), `.writerFinished`.
    public func finish() throws(CheckpointError) {
        queue.sync {}
        if let error = failure.error { throw error }
        if let missing = complete.indices.first(where: { !complete[$0] && slots[$0].elementCount > 0 }) {
            throw .tensorNotWritten(path: path, tensor: slots[missing].name)
        }
        try output.finish()
    }

    /// Fills the next free buffer with `fill(elementsDone, elementCount, buffer)` (at most `scratchByteCount` bytes of
    /// `dtype` elements) and hands its bytes to the background queue, one buffer at a time. Each piece sits in its
    /// buffer at its file offset's place modulo `OutputFile.uncachedAlignment` and ends at a multiple of it where the
    /// element size allows, so that its whole blocks are written past the page cache.
    private func writeInPieces(count: Int, dtype: DType, at fileOffset: Int,
                               fill: (Int, Int, UnsafeMutableRawPointer) -> Void) throws(CheckpointError) {
        let size = dtype.byteSize
        var done = 0
        while done < count {
            if let error = failure.error { throw error }
            let offset = fileOffset + done * size
            let lead = offset % OutputFile.uncachedAlignment
            let chunk = min((Self.scratchByteCount - lead) / size, count - done)
            freeScratch.wait()
            let buffer = scratch[nextScratch] + lead
            nextScratch = (nextScratch + 1) % scratch.count
            fill(done, chunk, buffer)
            let job = WriteJob(file: output, bytes: buffer, count: chunk * size, offset: offset, observer: observer)
            queue.async { [failure, freeScratch] in
                do throws(CheckpointError) { try job.run() } catch { failure.record(error) }
                freeScratch.signal()
            }
            done += chunk
        }
    }
}

/// The first error of the background writes.
private final class FirstFailure: Sendable {
    private let value = Mutex<CheckpointError?>(nil)

    var error: CheckpointError? { value.withLock { $0 } }

    func record(_ error: CheckpointError) { value.withLock { if $0 == nil { $0 = error } } }
}

/// One background `pwrite` of a filled conversion buffer, then the observer's look at it.
private struct WriteJob: @unchecked Sendable {
    let file: OutputFile
    let bytes: UnsafeMutableRawPointer
    let count: Int
    let offset: Int
    let observer: (any ShardBytesObserver)?

    func run() throws(CheckpointError) {
        try file.write(bytes, count: count, at: offset)
        observer?.wrote(UnsafeRawBufferPointer(start: bytes, count: count), at: offset)
    }
}
