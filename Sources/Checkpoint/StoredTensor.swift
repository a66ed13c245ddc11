import IR

/// Where one tensor lives in a checkpoint: its type and the byte range in one of the checkpoint's files. The bytes
/// are the tensor's elements in row-major order, little-endian, contiguous.
public struct StoredTensor: Hashable, Sendable {
    /// The tensor's name in the checkpoint (e.g. `model.layers.0.mlp.up_proj.weight`).
    public let name: String
    /// The stored element type.
    public let dtype: DType
    /// Dimensions, outermost first (`[]` for a 0-d scalar).
    public let shape: [Int]
    /// Index of the file holding the tensor in its reader's `filePaths` (0 for a header read on its own).
    public let fileIndex: Int
    /// Bytes from the start of the file to the tensor's first element.
    public let fileOffset: Int
    /// Bytes the tensor occupies: element count × `dtype.byteSize`.
    public let byteCount: Int

    /// A tensor of `dtype` and `shape` stored at bytes `[fileOffset, fileOffset + byteCount)` of file `fileIndex`.
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

    /// The tensor's bytes in its file: `fileOffset ..< fileOffset + byteCount`.
    public var byteRange: Range<Int> { fileOffset..<(fileOffset + byteCount) }
}
