import Checkpoint
import Crypto
import Synchronization

/// The size and SHA-256 of a shard computed from its bytes as the writer writes them (`ShardBytesObserver`), so that
/// recording a finished shard (`ShardRecorder`) need not read it back: the shard's bytes were written past the page
/// cache, and reading them would come from the device and put the whole file in the page cache after all.
///
/// Valid only when the pieces arrived front to back with no gap or overlap (`entry` is nil otherwise, and the
/// recorder reads the file instead). Hashing runs on the writer's background queue, overlapping the computation.
final class ShardDigest: ShardBytesObserver, Sendable {
    /// The hash so far, the file offset (bytes) the next piece must start at, and whether every piece came there
    /// (written from the writer's queue; `entry` is read from the thread that finished the writer).
    private let state = Mutex((hasher: SHA256(), next: 0, inOrder: true))

    init() {}

    func wrote(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        state.withLock { state in
            guard state.inOrder, offset == state.next else {
                state.inOrder = false
                return
            }
            state.hasher.update(bufferPointer: bytes)
            state.next += bytes.count
        }
    }

    /// The shard's size and hex SHA-256, once the writer has finished (every write observed), if every piece came in
    /// file order; nil otherwise.
    var entry: ShardLedger.Entry? {
        state.withLock { state in
            state.inOrder ? ShardLedger.Entry(bytes: state.next, sha256: PlanFingerprint.hex(state.hasher.finalize())) : nil
        }
    }
}
