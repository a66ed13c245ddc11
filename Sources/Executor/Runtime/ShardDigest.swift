import Checkpoint
import Crypto
import Foundation

/// The size and SHA-256 of a shard computed from its bytes as the writer writes them (`ShardBytesObserver`), so that
/// recording a finished shard (`ShardRecorder`) need not read it back: the shard's bytes were written past the page
/// cache, and reading them would come from the device and put the whole file in the page cache after all.
///
/// Valid only when the pieces arrived front to back with no gap or overlap (`entry` is nil otherwise, and the
/// recorder reads the file instead). Hashing runs on the writer's background queue, overlapping the computation.
final class ShardDigest: ShardBytesObserver, @unchecked Sendable {
    /// Guards the three below (calls come from the writer's queue; `entry` from the thread that finished the writer).
    private let lock = NSLock()
    private var hasher = SHA256()
    /// The file offset (bytes) the next piece must start at.
    private var next = 0
    private var inOrder = true

    init() {}

    func wrote(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard inOrder, offset == next else {
            inOrder = false
            return
        }
        hasher.update(bufferPointer: bytes)
        next += bytes.count
    }

    /// The shard's size and hex SHA-256, once the writer has finished (every write observed), if every piece came in
    /// file order; nil otherwise.
    var entry: ShardLedger.Entry? {
        lock.lock()
        defer { lock.unlock() }
        guard inOrder else { return nil }
        return ShardLedger.Entry(bytes: next, sha256: PlanFingerprint.hex(hasher.finalize()))
    }
}
