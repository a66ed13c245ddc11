import IR

/// Where one tensor lives in a checkpoint: its type and the byte range in one of the checkpoint's files.
public struct StoredTensor: Hashable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Index of the file holding the tensor in its `SafetensorsModel` (0 for a header read on its own).
    public let fileIndex: Int
    /// Bytes from the start of the file to the tensor's first element.
    public let fileOffset: Int
    public let byteCount: Int

    public init(name: String, dtype: DType, shape: [Int], fileIndex: Int, fileOffset: Int, byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.fileIndex = fileIndex
        self.fileOffset = fileOffset
        self.byteCount = byteCount
    }

    /// Number of elements (1 for a 0-d scalar).
    public var elementCount: Int { byteCount / dtype.byteSize }
}
