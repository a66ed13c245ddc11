/// Sees the bytes of a shard file as they are written, so that they can be hashed without reading the file back
/// (which, for shards written past the page cache, would read them from the device and fill the page cache with
/// them after all).
///
/// A `SafetensorsWriter` calls `wrote(_:at:)` for its header, then for each piece of tensor data once its write
/// has succeeded, one call at a time, in the order the pieces were written (which is file order when tensors are
/// written in their layout's order, front to back; an observer must check).
public protocol ShardBytesObserver: AnyObject, Sendable {
    /// `bytes` are now at file offset `offset` (bytes from the start of the file).
    func wrote(_ bytes: UnsafeRawBufferPointer, at offset: Int)
}
