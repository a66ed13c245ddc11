import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Large freed buffers kept for reuse by size, so that a run's kernel state — the same few sizes (bytes) tensor after
/// tensor and layer after layer — is not mapped, faulted in and zero-filled by the operating system anew each time.
/// Without it, an exact-tie TIES merge of a 1b model spends a third of its time in the kernel's page clearing.
///
/// The pool keeps a freed block only while the bytes held (`live`) plus the bytes pooled stay within the peak of
/// held bytes so far, and gives blocks back to the system when a new allocation would break that bound; so the
/// memory the process holds for buffers never exceeds the peak the `MemoryAccount` measures (and the plan predicts).
/// Blocks are reused only for requests of exactly their size (bytes), 64-byte aligned.
///
/// Blocks of at least `minimumBytes` are mapped and unmapped by the pool itself (`mmap`/`munmap`), so that a block
/// given back to the system really is: glibc raises its mmap threshold to the largest block freed so far (up to
/// 32 MiB) and serves later blocks below it from its heaps, which keep freed memory, so the process held more than
/// the `MemoryAccount` counted (a `--max-memory 512MiB` chain merge reached 587 MiB of RSS).
final class BlockPool: Sendable {
    /// Buffers smaller than this many bytes go straight to and from the system allocator.
    static let minimumBytes = 1 << 20

    private struct State {
        /// Pooled blocks by size in bytes (addresses as integers).
        var free: [Int: [UInt]] = [:]
        /// Bytes in `free`.
        var pooledBytes = 0
        /// Large blocks the C allocator made because `mmap` failed (freed with `deallocate`, not `munmap`).
        var allocated: Set<UInt> = []

        /// Gives the large block at `address` back to the system.
        mutating func unmap(_ address: UInt, bytes: Int) {
            guard let pointer = UnsafeMutableRawPointer(bitPattern: address) else { return }
            if allocated.remove(address) != nil {
                pointer.deallocate()
            } else {
                #if canImport(Glibc)
                munmap(pointer, bytes)
                #else
                pointer.deallocate()
                #endif
            }
        }

        /// Gives pooled blocks back to the system, largest first, until at most `limit` bytes stay pooled.
        mutating func shrink(to limit: Int) {
            for size in free.keys.sorted(by: >) where pooledBytes > limit {
                while pooledBytes > limit, let address = free[size]?.popLast() {
                    unmap(address, bytes: size)
                    pooledBytes -= size
                }
                if free[size]?.isEmpty == true { free[size] = nil }
            }
        }
    }

    private let state = Mutex(State())

    /// A new large block: mapped, or made by the C allocator (and noted in `allocated`) if mapping fails.
    private func map(bytes: Int) -> UnsafeMutableRawPointer {
        #if canImport(Glibc)
        if let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
           mapped != MAP_FAILED {
            return mapped
        }
        #endif
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        state.withLock { _ = $0.allocated.insert(UInt(bitPattern: pointer)) }
        return pointer
    }

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
            return map(bytes: bytes)
        }
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }

    /// Takes back a block of `bytes` bytes from `take`: pooled if `live` (bytes held, this block no longer
    /// included) plus the bytes pooled, this block included, stays within `peak`; else given back to the system.
    func give(_ pointer: UnsafeMutableRawPointer, bytes: Int, live: Int, peak: Int) {
        if bytes >= Self.minimumBytes {
            state.withLock { state in
                if live + state.pooledBytes + bytes <= peak {
                    state.free[bytes, default: []].append(UInt(bitPattern: pointer))
                    state.pooledBytes += bytes
                } else {
                    state.unmap(UInt(bitPattern: pointer), bytes: bytes)
                }
            }
            return
        }
        pointer.deallocate()
    }
}
