import Synchronization

/// Large freed buffers kept for reuse by size, so that a run's kernel state — the same few sizes (bytes) tensor after
/// tensor and layer after layer — is not mapped, faulted in and zero-filled by the operating system anew each time.
/// Without it, an exact-tie TIES merge of a 1b model spends a third of its time in the kernel's page clearing.
///
/// The pool keeps a freed block only while the bytes held (`live`) plus the bytes pooled stay within the peak of
/// held bytes so far, and gives blocks back to the system when a new allocation would break that bound; so the
/// memory the process holds for buffers never exceeds the peak the `MemoryAccount` measures (and the plan predicts).
/// Blocks are reused only for requests of exactly their size (bytes), 64-byte aligned.
final class BlockPool: Sendable {
    /// Buffers smaller than this many bytes go straight to and from the system allocator.
    static let minimumBytes = 1 << 20

    private struct State {
        /// Pooled blocks by size in bytes (addresses as integers).
        var free: [Int: [UInt]] = [:]
        /// Bytes in `free`.
        var pooledBytes = 0

        /// Gives pooled blocks back to the system, largest first, until at most `limit` bytes stay pooled.
        mutating func shrink(to limit: Int) {
            for size in free.keys.sorted(by: >) where pooledBytes > limit {
                while pooledBytes > limit, let address = free[size]?.popLast() {
                    UnsafeMutableRawPointer(bitPattern: address)?.deallocate()
                    pooledBytes -= size
                }
                if free[size]?.isEmpty == true { free[size] = nil }
            }
        }
    }

    private let state = Mutex(State())

    init() {}

    deinit { state.withLock { $0.shrink(to: 0) } }

    /// Bytes pooled now.
    var pooledBytes: Int { state.withLock { $0.pooledBytes } }

    /// A block of `bytes` bytes (64-byte aligned, contents unspecified): a pooled one of that size if any, else a
    /// new one, after giving back pooled blocks so that `live` (bytes held, this block included) plus the bytes
    /// pooled stays within `peak`.
    func take(bytes: Int, live: Int, peak: Int) -> UnsafeMutableRawPointer {
        if bytes >= Self.minimumBytes {
            let reused: UInt? = state.withLock { state in
                if let address = state.free[bytes]?.popLast() {
                    state.pooledBytes -= bytes
                    return address
                }
                state.shrink(to: max(0, peak - live))
                return nil
            }
            if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused) { return pointer }
        }
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }

    /// Takes back a block of `bytes` bytes from `take`: pooled if `live` (bytes held, this block no longer
    /// included) plus the bytes pooled, this block included, stays within `peak`; else given back to the system.
    func give(_ pointer: UnsafeMutableRawPointer, bytes: Int, live: Int, peak: Int) {
        if bytes >= Self.minimumBytes {
            let kept = state.withLock { state -> Bool in
                guard live + state.pooledBytes + bytes <= peak else { return false }
                state.free[bytes, default: []].append(UInt(bitPattern: pointer))
                state.pooledBytes += bytes
                return true
            }
            if kept { return }
        }
        pointer.deallocate()
    }
}
