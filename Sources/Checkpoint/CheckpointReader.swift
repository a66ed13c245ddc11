import IR

/// A checkpoint directory opened for reading, whatever its format: its tensors' names, dtypes and shapes, and where
/// each tensor's bytes are (a file and a byte range), read with `pread` so the executor can read any element range
/// of a tensor from several threads at once. `CheckpointFormat.open(directory:)` returns the reader for a directory.
public protocol CheckpointReader: AnyObject, Sendable {
    /// The directory the reader opened (as given to it).
    var directory: String { get }
    /// Paths of the files the tensors are read from; `StoredTensor.fileIndex` indexes this array.
    var filePaths: [String] { get }
    /// Every tensor name, in the checkpoint's order (for safetensors: sorted by name, as headers are unordered JSON).
    var tensorNames: [String] { get }
    /// The tensor called `name`, or nil when the checkpoint has none.
    func tensor(_ name: String) -> StoredTensor?
    /// Copies `count` bytes starting `offset` bytes into file `fileIndex` into `buffer` (at least `count` bytes).
    /// Safe to call from several threads at once.
    /// - Throws: `CheckpointError.cannotOpen` on a failed read and `.fileTooShort` when the file ends first, both
    ///   naming the file.
    func readBytes(fileIndex: Int, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError)
}

extension CheckpointReader {
    /// The bytes holding elements `[elementOffset, elementOffset + count)` of `tensor`: the range within file
    /// `tensor.fileIndex`.
    /// - Throws: `CheckpointError.tensorNotInCheckpoint` if `tensor` is not this reader's, `.readOutOfRange` (naming
    ///   the file and tensor) if the elements are not all inside the tensor.
    public func byteRange(of tensor: StoredTensor, elementOffset: Int, count: Int) throws(CheckpointError) -> Range<Int> {
        guard self.tensor(tensor.name) == tensor else {
            throw .tensorNotInCheckpoint(directory: directory, tensor: tensor.name)
        }
        guard elementOffset >= 0, count >= 0, elementOffset <= tensor.elementCount - count else {
            throw .readOutOfRange(path: filePaths[tensor.fileIndex], tensor: tensor.name, elementOffset: elementOffset,
                                  count: count, elementCount: tensor.elementCount)
        }
        let start = tensor.fileOffset + elementOffset * tensor.dtype.byteSize
        return start..<(start + count * tensor.dtype.byteSize)
    }

    /// Reads elements `[elementOffset, elementOffset + count)` of `tensor` into `staging` (at least
    /// `count · tensor.dtype.byteSize` bytes) and decodes them into `dst` (`count` floats) as f32, exactly, on the
    /// calling thread. (The executor reads in parallel blocks with `byteRange` and `readBytes` instead.)
    /// - Throws: the errors of `byteRange(of:elementOffset:count:)` and `readBytes(fileIndex:offset:count:into:)`.
    public func readFloats(_ tensor: StoredTensor, elementOffset: Int, count: Int, staging: UnsafeMutableRawPointer,
                           into dst: UnsafeMutablePointer<Float>) throws(CheckpointError) {
        let bytes = try byteRange(of: tensor, elementOffset: elementOffset, count: count)
        try readBytes(fileIndex: tensor.fileIndex, offset: bytes.lowerBound, count: bytes.count, into: staging)
        DTypeConversion.decode(staging, dtype: tensor.dtype, count: count, into: dst)
    }
}
