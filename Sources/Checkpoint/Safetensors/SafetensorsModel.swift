import IR

/// A safetensors checkpoint directory opened for reading: every header validated, every file kept open and read with
/// `pread`. The `CheckpointReader` of `CheckpointFormat.safetensors`.
public final class SafetensorsModel: CheckpointReader, @unchecked Sendable {
    /// The directory, as given to `init(directory:)`.
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
    /// - Throws: `CheckpointError` naming the directory, file and tensor: a missing directory, no safetensors files,
    ///   an unreadable or malformed header or index, a tensor in two files, an index that disagrees with the shards.
    public init(directory: String) throws(CheckpointError) {
        let (fileNames, index) = try SafetensorsFiles.locate(in: directory)
        var files: [InputFile] = []
        var metadata: [[String: String]] = []
        var tensorsByName: [String: StoredTensor] = [:]
        for (fileIndex, name) in fileNames.enumerated() {
            let file = try InputFile(path: SafetensorsFiles.join(directory, name))
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
    /// - Throws: `CheckpointError` naming the file (and tensor) when it is missing, truncated or malformed.
    public static func readHeader(path: String) throws(CheckpointError) -> [StoredTensor] {
        try SafetensorsHeader(file: InputFile(path: path), fileIndex: 0).tensors
    }

    /// Number of files opened.
    public var fileCount: Int { files.count }

    /// The tensor called `name`, if the checkpoint has one.
    public func tensor(_ name: String) -> StoredTensor? {
        tensorsByName[name]
    }

    /// Copies `count` bytes at `offset` of file `fileIndex` into `buffer` with `pread`; safe from several threads.
    /// - Throws: `CheckpointError.cannotOpen` on a failed read, `.fileTooShort` when the file ends first (both name
    ///   the file), `.cannotOpen` naming the directory for a `fileIndex` that is not one of `filePaths`.
    public func readBytes(fileIndex: Int, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError) {
        guard files.indices.contains(fileIndex) else {
            throw .cannotOpen(path: directory, reason: "there is no file #\(fileIndex) (the checkpoint has \(files.count))")
        }
        try files[fileIndex].read(offset: offset, count: count, into: buffer)
    }
}
