import IR

/// What a file-backed `CheckpointReader` holds: the checkpoint's files, open for `pread`, and its tensors by name
/// (each `StoredTensor.fileIndex` indexing `files`). Shared by the safetensors and PyTorch readers.
struct OpenedFiles: @unchecked Sendable {
    /// The checkpoint directory, for messages.
    let directory: String
    /// The files, in `fileIndex` order.
    private(set) var files: [InputFile] = []
    /// Every tensor by name.
    private(set) var tensorsByName: [String: StoredTensor] = [:]
    /// Tensor names in the order they were added (file by file).
    private(set) var order: [String] = []

    init(directory: String) {
        self.directory = directory
    }

    /// Adds `file` (the next `fileIndex`) holding `tensors`.
    /// - Throws: `CheckpointError.duplicateTensor` naming both files when a tensor is already in an earlier file (or
    ///   twice in this one).
    mutating func add(_ file: InputFile, tensors: [StoredTensor]) throws(CheckpointError) {
        for tensor in tensors {
            if let earlier = tensorsByName[tensor.name] {
                throw .duplicateTensor(tensor: tensor.name, firstPath: files.indices.contains(earlier.fileIndex)
                                       ? files[earlier.fileIndex].path : file.path, secondPath: file.path)
            }
            tensorsByName[tensor.name] = tensor
            order.append(tensor.name)
        }
        files.append(file)
    }

    /// The tensor called `name`, if the checkpoint has one.
    func tensor(_ name: String) -> StoredTensor? { tensorsByName[name] }

    /// Copies `count` bytes at `offset` of file `fileIndex` into `buffer` with `pread`; safe from several threads.
    /// - Throws: `CheckpointError.cannotOpen` on a failed read, `.fileTooShort` when the file ends first (both name
    ///   the file), `.cannotOpen` naming the directory for a `fileIndex` that is not one of the files.
    func readBytes(fileIndex: Int, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError) {
        guard files.indices.contains(fileIndex) else {
            throw .cannotOpen(path: directory, reason: "there is no file #\(fileIndex) (the checkpoint has \(files.count))")
        }
        try files[fileIndex].read(offset: offset, count: count, into: buffer)
    }
}
