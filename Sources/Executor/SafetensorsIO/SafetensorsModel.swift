import IR
import Synchronization

/// A checkpoint directory opened for reading: every header validated, every file kept open and read with `pread`.
public final class SafetensorsModel: @unchecked Sendable {
    public let directory: String
    /// Paths of the opened files; `StoredTensor.fileIndex` indexes this array.
    public let filePaths: [String]
    /// The `__metadata__` of each opened file, in `filePaths` order.
    public let fileMetadata: [[String: String]]
    /// All tensor names, sorted.
    public let tensorNames: [String]
    private let files: [InputFile]
    private let tensorsByName: [String: StoredTensor]

    /// Opens the index's shards, else `model.safetensors`, else every `*.safetensors` file in `directory`.
    public init(directory: String) throws(SafetensorsError) {
        let (fileNames, index) = try CheckpointFiles.locate(in: directory)
        var files: [InputFile] = []
        var metadata: [[String: String]] = []
        var tensorsByName: [String: StoredTensor] = [:]
        for (fileIndex, name) in fileNames.enumerated() {
            let file = try InputFile(path: CheckpointFiles.join(directory, name))
            let header = try SafetensorsHeader(file: file, fileIndex: fileIndex)
            for tensor in header.tensors {
                if let earlier = tensorsByName[tensor.name] {
                    throw .duplicateTensor(tensor: tensor.name, firstPath: files[earlier.fileIndex].path, secondPath: file.path)
                }
                tensorsByName[tensor.name] = tensor
            }
            files.append(file)
            metadata.append(header.metadata)
        }
        let tensorNames = tensorsByName.keys.sorted()
        try index?.verify(tensors: tensorNames.compactMap { tensorsByName[$0] }, shardNames: fileNames)

        self.directory = directory
        self.filePaths = files.map(\.path)
        self.fileMetadata = metadata
        self.tensorNames = tensorNames
        self.files = files
        self.tensorsByName = tensorsByName
    }

    /// Parses and validates the header of one safetensors file (tensors sorted by name, `fileIndex` 0).
    public static func readHeader(path: String) throws(SafetensorsError) -> [StoredTensor] {
        try SafetensorsHeader(file: InputFile(path: path), fileIndex: 0).tensors
    }

    /// Number of files opened.
    public var fileCount: Int { files.count }

    /// The tensor called `name`, if the checkpoint has one.
    public func tensor(_ name: String) -> StoredTensor? {
        tensorsByName[name]
    }

    /// Reads the stored bytes of elements `[elementOffset, elementOffset + count)` of `t` into `staging` (at least
    /// `count · t.dtype.byteSize` bytes) and decodes them into `dst` as f32, `parallel` blocks at a time.
    public func readFloats(
        _ t: StoredTensor, elementOffset: Int, count: Int, staging: UnsafeMutableRawPointer,
        into dst: UnsafeMutablePointer<Float>, parallel: Parallel
    ) throws(SafetensorsError) {
        guard tensorsByName[t.name] == t else { throw .tensorNotInCheckpoint(directory: directory, tensor: t.name) }
        guard elementOffset >= 0, count >= 0, elementOffset <= t.elementCount - count else {
            throw .readOutOfRange(
                path: files[t.fileIndex].path, tensor: t.name,
                elementOffset: elementOffset, count: count, elementCount: t.elementCount)
        }
        let size = t.dtype.byteSize
        let file = files[t.fileIndex]
        let start = t.fileOffset + elementOffset * size
        let source = SendablePointer(staging.assumingMemoryBound(to: UInt8.self))
        let target = SendablePointer(dst)
        let dtype = t.dtype
        let failure = Mutex<SafetensorsError?>(nil)
        parallel.forEachBlock(count: count) { r in
            let bytes = source.pointer + r.lowerBound * size
            do throws(SafetensorsError) {
                try file.read(offset: start + r.lowerBound * size, count: r.count * size, into: bytes)
            } catch {
                failure.withLock { $0 = $0 ?? error }
                return
            }
            DTypeConversion.decode(bytes, dtype: dtype, count: r.count, into: target.pointer + r.lowerBound)
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
