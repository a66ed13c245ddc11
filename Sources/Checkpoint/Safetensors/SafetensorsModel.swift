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
    /// The files, open for `pread`, and every tensor by name.
    private let opened: OpenedFiles

    /// Opens `files` in `directory` when given (a PEFT adapter's `adapter_model.safetensors`); otherwise the index's
    /// shards, else `model.safetensors`, else every `*.safetensors` file in `directory`.
    /// - Throws: `CheckpointError` naming the directory, file and tensor: a missing directory, no safetensors files,
    ///   an unreadable or malformed header or index, a tensor in two files, an index that disagrees with the shards.
    public init(directory: String, files: [String]? = nil) throws(CheckpointError) {
        let fileNames: [String]
        let index: ShardIndex?
        if let files {
            (fileNames, index) = (files, nil)
        } else {
            (fileNames, index) = try SafetensorsFiles.locate(in: directory)
        }
        var opened = OpenedFiles(directory: directory)
        var metadata: [[String: String]] = []
        for (fileIndex, name) in fileNames.enumerated() {
            let file = try InputFile(path: SafetensorsFiles.join(directory, name))
            let header = try SafetensorsHeader(file: file, fileIndex: fileIndex)
            try opened.add(file, tensors: header.tensors)
            metadata.append(header.metadata)
        }
        let tensorNames = opened.order.sorted()
        try index?.verify(tensors: tensorNames.compactMap { opened.tensor($0) }, shardNames: fileNames)

        self.directory = directory
        self.filePaths = opened.files.map(\.path)
        self.fileMetadata = metadata
        self.tensorNames = tensorNames
        self.opened = opened
    }

    /// Parses and validates the header of one safetensors file (tensors sorted by name, `fileIndex` 0).
    /// - Throws: `CheckpointError` naming the file (and tensor) when it is missing, truncated or malformed.
    public static func readHeader(path: String) throws(CheckpointError) -> [StoredTensor] {
        try SafetensorsHeader(file: InputFile(path: path), fileIndex: 0).tensors
    }

    /// Parses and validates the header of a safetensors file of `size` bytes that is read through `read(offset, count,
    /// buffer)` — a file elsewhere, fetched by byte ranges (tensors sorted by name, file index `fileIndex`).
    /// - Throws: `CheckpointError` naming `path` (and the tensor) when the header is truncated or malformed, and what
    ///   `read` throws.
    public static func readHeader(path: String, size: Int, fileIndex: Int = 0,
                                  read: (Int, Int, UnsafeMutableRawPointer) throws(CheckpointError) -> Void)
        throws(CheckpointError) -> [StoredTensor] {
        try SafetensorsHeader(path: path, size: size, fileIndex: fileIndex, read: read).tensors
    }

    /// Number of files opened.
    public var fileCount: Int { opened.files.count }

    /// The tensor called `name`, if the checkpoint has one.
    public func tensor(_ name: String) -> StoredTensor? { opened.tensor(name) }

    /// Copies `count` bytes at `offset` of file `fileIndex` into `buffer` with `pread` (`OpenedFiles.readBytes`).
    public func readBytes(fileIndex: Int, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError) {
        try opened.readBytes(fileIndex: fileIndex, offset: offset, count: count, into: buffer)
    }
}
