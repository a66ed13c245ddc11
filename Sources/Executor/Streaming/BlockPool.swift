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
/// A request takes a pooled block of exactly its size (bytes) if there is one, else the smallest pooled block of at
/// most twice its size, whose surplus then counts as pooled (`slackBytes`) until the block comes back. Tensors of
/// different shapes alternate when groups run on lanes (an MLP's 44 MiB blocks beside attention's 16 MiB and 22 MiB
/// ones in a 1b model): with exact reuse alone a two-lane 512 MiB TIES merge of 8.8 GB of inputs faulted in 2,425
/// huge pages (4.7 GB) and 560 thousand small ones a run, with larger blocks reused 847 and 347 thousand (one lane:
/// 343 and 112 thousand). Blocks are 64-byte aligned.
///
/// Blocks of at least `minimumBytes` are mapped and unmapped by the pool itself (`mmap`/`munmap`), so that a block
/// given back to the system really is: glibc raises its mmap threshold to the largest block freed so far (up to
/// 32 MiB) and serves later blocks below it from its heaps, which keep freed memory, so the process held more than
/// the `MemoryAccount` counted (a `--max-memory 512MiB` chain merge reached 587 MiB of RSS).
final class BlockPool: Sendable {
    /// Buffers smaller than this many bytes go straight to and from the system allocator.
    static let minimumBytes = 1 << 20
    /// Blocks of at least this many bytes (an x86-64 huge page) are advised to be backed by huge pages.
    static let hugePageBytes = 2 << 20

    private struct State {
        /// Pooled blocks by size in bytes (addresses as integers).
        var free: [Int: [UInt]] = [:]
        /// Bytes in `free`.
        var pooledBytes = 0
        /// Bytes of blocks in use beyond what their requests asked for (a larger pooled block served a request).
        var slackBytes = 0
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
            // Transparent huge pages where the system gives them only on request (`enabled` = `madvise`, as here):
            // a 44 MiB block is then faulted in 22 times instead of 11264 (sce3 at 512 MiB: 1.6 million faults of
            // 4 KiB pages a run, 6.7 s of system time, against 23 thousand and 4.7 s).
            if bytes >= Self.hugePageBytes { _ = madvise(mapped, bytes, MADV_HUGEPAGE) }
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

    /// Bytes of the blocks in use beyond their requests now.
    var slackBytes: Int { state.withLock { $0.slackBytes } }

    /// A block of at least `bytes` bytes (64-byte aligned, contents unspecified) and its size in bytes: a pooled one
    /// of that size if any, else the smallest pooled one of at most twice that size, else a new one of that size,
    /// after giving back pooled blocks so that `live` (bytes held, this request included) plus the bytes pooled and
    /// the surplus of blocks in use stays within `peak`. Give the block back with both sizes (`give`).
    func take(bytes: Int, live: Int, peak: Int) -> (pointer: UnsafeMutableRawPointer, blockBytes: Int) {
        guard bytes >= Self.minimumBytes else {
            return (UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), bytes)
        }
        let reused: (address: UInt, bytes: Int)? = state.withLock { state in
            if let address = state.free[bytes]?.popLast() {
                state.pooledBytes -= bytes
                return (address, bytes)
            }
            var larger: (address: UInt, bytes: Int)?
            if let size = state.free.keys.filter({ $0 > bytes && $0 <= 2 * bytes }).min(),
               let address = state.free[size]?.popLast() {
                if state.free[size]?.isEmpty == true { state.free[size] = nil }
                state.pooledBytes -= size
                state.slackBytes += size - bytes
                larger = (address, size)
            }
            state.shrink(to: max(0, peak - live - state.slackBytes))
            return larger
        }
        if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused.address) { return (pointer, reused.bytes) }
        return (map(bytes: bytes), bytes)
    }

    /// Takes back a block of `blockBytes` bytes that `take` gave for a request of `bytes`: pooled if `live` (bytes
    /// held, this request no longer included) plus the bytes pooled, this block included, and the surplus of blocks
    /// in use stays within `peak`; else given back to the system.
    func give(_ pointer: UnsafeMutableRawPointer, bytes: Int, blockBytes: Int, live: Int, peak: Int) {
        guard blockBytes >= Self.minimumBytes else { return pointer.deallocate() }
        state.withLock { state in
            state.slackBytes -= blockBytes - bytes
            if live + state.pooledBytes + state.slackBytes + blockBytes <= peak {
                state.free[blockBytes, default: []].append(UInt(bitPattern: pointer))
                state.pooledBytes += blockBytes
            } else {
                state.unmap(UInt(bitPattern: pointer), bytes: blockBytes)
            }
        }
    }
}
