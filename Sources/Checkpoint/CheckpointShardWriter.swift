/// One shard being written: tensors arrive as f32 element ranges (or, for integer and BOOL tensors, raw bytes), front to back per tensor, in any tensor order.
public protocol CheckpointShardWriter: AnyObject {
    /// The file being written.
    var path: String { get }

    /// Converts `floats` to tensor `name`'s dtype (round to nearest even) and writes them as its elements
    /// `[elementOffset, elementOffset + floats.count)`; each tensor's ranges come front to back, each element once.
    /// - Throws: `CheckpointError` naming the file and tensor: a tensor not in the layout, a range that is not the
    ///   next one or runs past the tensor, a finished shard, a failed write.
    func write(_ name: String, elementOffset: Int, floats: UnsafeBufferPointer<Float>) throws(CheckpointError)

    /// Writes `bytes`, whole elements in tensor `name`'s stored dtype (little-endian), unchanged as its elements
    /// `[elementOffset, elementOffset + bytes.count / dtype.byteSize)`: how integer and BOOL tensors are written
    /// (never through f32). Same order rules as `write(_:elementOffset:floats:)`.
    /// - Throws: the errors of `write(_:elementOffset:floats:)`; `.elementCountMismatch` when `bytes.count` is not
    ///   a whole number of elements.
    func write(_ name: String, elementOffset: Int, bytes: UnsafeRawBufferPointer) throws(CheckpointError)

    /// Waits for pending writes, checks every tensor was written completely and closes the file.
    /// - Throws: `CheckpointError.tensorNotWritten` naming a tensor left incomplete, `.writeFailed` for a write or
    ///   close that failed, `.writerFinished` when called twice.
    func finish() throws(CheckpointError)
}
