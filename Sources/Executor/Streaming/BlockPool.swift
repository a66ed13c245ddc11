import CMemoryOps
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Large freed buffers kept for reuse by size, so that a run's kernel state — the same few sizes (bytes) tensor after
/// tensor and layer after layer — is not mapped, faulted in and zero-filled by the operating system anew each time.
/// Without it, an exact-tie TIES merge of a 1b model spends a third of its time in the kernel's page clearing.
///
/// The pool keeps a freed block only while the bytes held (`live`) plus the bytes pooled stay within a bound (the
/// `MemoryAccount`'s `poolBound`: its peak so far, or during a run a quarter more than the plan's predicted peak,
/// never past the budget), and gives blocks back to the system when a new allocation would break that bound; so the
/// memory the process holds for buffers never exceeds it.
/// A request takes a pooled block of exactly its size (bytes) if there is one, else the smallest pooled block of at
/// most twice its size, split after the huge pages the request needs when a huge page or more is left (the rest
/// stays pooled: `split`), whose surplus then counts as pooled (`slackBytes`) until the block comes back. Tensors of
/// different shapes alternate when groups run on lanes (an MLP's 44 MiB blocks beside attention's 16 MiB and 22 MiB
/// ones in a 1b model): with exact reuse alone a two-lane 512 MiB TIES merge of 8.8 GB of inputs faulted in 2,425
/// huge pages (4.7 GB) and 560 thousand small ones a run, with larger blocks reused 847 and 347 thousand (one lane:
/// 343 and 112 thousand). A request no pooled block serves is made of pooled blocks' pages, moved whole huge page by
/// whole huge page into one new range by `mremap` (`assemble`), before anything is given back: a TIES merge frees an
/// MLP tensor's 44 MiB blocks and asks for attention's 16 MiB ones, and without the move breadcrumbs3 at 512 MiB
/// faulted in 1,429 huge pages (2.8 GB cleared by the kernel) a run, 202 with it. Blocks of a huge page or more start
/// on a huge-page boundary; all are 64-byte aligned.
///
/// Blocks of at least `minimumBytes` are mapped and unmapped by the pool itself (`mmap`/`munmap`), so that a block
/// given back to the system really is: glibc raises its mmap threshold to the largest block freed so far (up to
/// 32 MiB) and serves later blocks below it from its heaps, which keep freed memory, so the process held more than
/// the `MemoryAccount` counted (a `--max-memory 512MiB` chain merge reached 587 MiB of RSS). The minimum is glibc's
/// initial mmap threshold, 128 KiB: with 1 MiB, the buffers between (kernel state and chunk buffers of small tensors)
/// stayed in glibc's heaps and arenas, which kept 40–60 MiB resident beside the 15 MiB they held at most, and
/// lowering it took the peak RSS at `--max-memory 512MiB` of sce3 from 554–591 MiB to 542, ties3 from 509–517 to
/// 483, breadcrumbs3 from 508–516 to 478, slerp_of_ties from 501–514 to 484–491 and multislerp3 from 557–559 to 547.
final class BlockPool: Sendable {
    /// Buffers smaller than this many bytes (128 KiB) go straight to and from the system allocator.
    static let minimumBytes = 1 << 17
    /// Blocks of at least this many bytes (an x86-64 huge page) are advised to be backed by huge pages.
    static let hugePageBytes = 2 << 20

    /// A page-aligned address range of one mapping (a piece a block is made of), `bytes` a multiple of the page size.
    struct Extent {
        var address: UInt
        var bytes: Int
    }

    private struct State {
        /// Pooled blocks by size in bytes (addresses as integers).
        var free: [Int: [UInt]] = [:]
        /// Bytes in `free`.
        var pooledBytes = 0
        /// Bytes of blocks in use beyond what their requests asked for (a larger pooled block served a request).
        var slackBytes = 0
        /// Large blocks the C allocator made because `mmap` failed (freed with `deallocate`, not `munmap`).
        var allocated: Set<UInt> = []
        /// The pieces of the blocks (pooled or in use) that `assemble` made of several mappings, by block address;
        /// any other block the pool mapped is one mapping of its size rounded up to pages.
        var extents: [UInt: [Extent]] = [:]

        /// The pieces of the block at `address` of `bytes` bytes, in address order: those `assemble` or `trim` made it
        /// of, else its one mapping of `bytes` rounded up to pages.
        func pieces(of address: UInt, bytes: Int) -> [Extent] {
            extents[address] ?? [Extent(address: address, bytes: BlockPool.pageRounded(bytes))]
        }

        /// Gives the large block at `address` back to the system, piece by piece (`pieces(of:bytes:)`).
        mutating func unmap(_ address: UInt, bytes: Int) {
            guard let pointer = UnsafeMutableRawPointer(bitPattern: address) else { return }
            let mapped = pieces(of: address, bytes: bytes)
            extents[address] = nil
            if allocated.remove(address) != nil {
                pointer.deallocate()
            } else {
                #if canImport(Glibc)
                for piece in mapped {
                    munmap(UnsafeMutableRawPointer(bitPattern: piece.address), piece.bytes)
                }
                #else
                pointer.deallocate()
                #endif
            }
        }

        /// Gives pooled blocks back to the system, largest first, until at most `limit` bytes stay pooled. A block
        /// larger than what must go gives back only its tail, whole huge pages from a huge-page boundary, and stays
        /// pooled under its smaller size (`trim`): a run's largest tensor (a vocabulary's embeddings) frees a block
        /// of most of the budget, and giving all of it back when the next tensors need a few MiB more had the
        /// system fault it in again for the output head (multislerp3 at 512 MiB: a 322 MiB block given back, 300
        /// MiB of the head's block faulted in anew).
        mutating func shrink(to limit: Int) {
            for size in free.keys.sorted(by: >) where pooledBytes > limit {
                while pooledBytes > limit, let address = free[size]?.popLast() {
                    if let kept = trim(address, bytes: size, by: pooledBytes - limit) {
                        free[kept, default: []].append(address)
                        pooledBytes -= size - kept
                    } else {
                        unmap(address, bytes: size)
                        pooledBytes -= size
                    }
                }
                if free[size]?.isEmpty == true { free[size] = nil }
            }
        }

        /// Gives back the tail of the pooled block at `address` of `bytes` bytes so that at least `excess` bytes go,
        /// cutting on a huge-page boundary, and returns the size the block keeps; nil (nothing done) when what would
        /// stay is under `BlockPool.minimumBytes`, or the block is the C allocator's or under a huge page.
        mutating func trim(_ address: UInt, bytes: Int, by excess: Int) -> Int? {
            #if canImport(Glibc)
            let huge = BlockPool.hugePageBytes
            let kept = (bytes - excess) / huge * huge
            guard bytes >= huge, kept >= BlockPool.minimumBytes, !allocated.contains(address) else { return nil }
            var staying: [Extent] = [], cut = 0
            for piece in pieces(of: address, bytes: bytes) {
                let stays = min(piece.bytes, max(0, kept - cut))
                if stays > 0 { staying.append(Extent(address: piece.address, bytes: stays)) }
                if stays < piece.bytes {
                    munmap(UnsafeMutableRawPointer(bitPattern: piece.address + UInt(stays)), piece.bytes - stays)
                }
                cut += piece.bytes
            }
            extents[address] = staying.count > 1 ? staying : nil
            return kept
            #else
            return nil
            #endif
        }

        /// Splits the block at `address` of `bytes` bytes after the whole huge pages that `keeping` bytes need, when
        /// what is left is a huge page or more: the rest becomes a pooled block of its own (its pieces, if it spans
        /// several, in `extents`), and the size the block keeps is returned; nil (nothing done) for a block of the C
        /// allocator or not on a huge-page boundary. A chain's two stage results, kept whole as planes of the
        /// vocabulary tensor, each take half of the block its tie cut's entries freed, instead of the second faulting
        /// in 125 MiB anew (`slerp_of_ties` at 512 MiB).
        mutating func split(_ address: UInt, bytes: Int, keeping: Int) -> Int? {
            let huge = BlockPool.hugePageBytes
            let head = (keeping + huge - 1) / huge * huge
            guard bytes - head >= huge, address % UInt(huge) == 0, !allocated.contains(address) else { return nil }
            var front: [Extent] = [], back: [Extent] = [], offset = 0
            for piece in pieces(of: address, bytes: bytes) {
                if offset + piece.bytes <= head {
                    front.append(piece)
                } else if offset >= head {
                    back.append(piece)
                } else {
                    let cut = head - offset
                    front.append(Extent(address: piece.address, bytes: cut))
                    back.append(Extent(address: piece.address + UInt(cut), bytes: piece.bytes - cut))
                }
                offset += piece.bytes
            }
            guard let rest = back.first?.address else { return nil }
            extents[address] = front.count > 1 ? front : nil
            extents[rest] = back.count > 1 ? back : nil
            free[bytes - head, default: []].append(rest)
            pooledBytes += bytes - head
            return head
        }

        /// Moves the pages of pooled blocks, largest first, to the front of the fresh mapping `destination` of
        /// `bytes` bytes (a multiple of the page size) with `mremap`, so that memory the process already faulted in
        /// and holds serves the new block instead of pages the system must clear; a block only partly needed leaves
        /// its other pages pooled. Returns the new block's pieces. Blocks made of more than `maxExtents` pieces,
        /// and blocks of the C allocator, are not moved.
        mutating func assemble(into destination: UInt, bytes: Int) -> [Extent] {
            #if os(Linux)
            // Whole huge pages between huge-page-aligned addresses, so that the kernel moves them as they are
            // instead of splitting them into small pages: the destination and every moved piece start on a huge
            // page (`map`), and a piece moves whole huge pages only.
            let huge = BlockPool.hugePageBytes
            guard destination % UInt(huge) == 0 else { return [Extent(address: destination, bytes: bytes)] }
            var parts: [Extent] = [], offset = 0, leftovers: [[Extent]] = [], failed = false
            for size in free.keys.sorted(by: >) where offset + huge <= bytes && !failed {
                guard var addresses = free[size] else { continue }
                var kept: [UInt] = []
                while offset + huge <= bytes, !failed, let address = addresses.popLast() {
                    let moving = pieces(of: address, bytes: size)
                    guard !allocated.contains(address), moving.count <= BlockPool.maxExtents, size >= huge,
                          address % UInt(huge) == 0 else {
                        kept.append(address)
                        continue
                    }
                    extents[address] = nil
                    pooledBytes -= size
                    // The block's pieces lie in order, each ending where the next begins; moving stops at the first
                    // piece that cannot move, so that what stays is again one run of pieces from `left[0]` on.
                    var left: [Extent] = []
                    for piece in moving {
                        let wanted = failed ? 0 : min(piece.bytes, bytes - offset) / huge * huge
                        guard wanted > 0, let from = UnsafeMutableRawPointer(bitPattern: piece.address),
                              let to = UnsafeMutableRawPointer(bitPattern: destination + UInt(offset)),
                              mg_move_pages(from, wanted, to) == 0 else {
                            failed = failed || wanted > 0
                            left.append(piece)
                            continue
                        }
                        parts.append(Extent(address: destination + UInt(offset), bytes: wanted))
                        offset += wanted
                        if wanted < piece.bytes {
                            left.append(Extent(address: piece.address + UInt(wanted), bytes: piece.bytes - wanted))
                        }
                    }
                    if !left.isEmpty { leftovers.append(left) }
                }
                addresses.append(contentsOf: kept)
                free[size] = addresses.isEmpty ? nil : addresses
            }
            // What was not needed of a block stays pooled as a block of its own.
            for left in leftovers {
                let leftBytes = left.reduce(0) { $0 + $1.bytes }
                free[leftBytes, default: []].append(left[0].address)
                pooledBytes += leftBytes
                if left.count > 1 { extents[left[0].address] = left }
            }
            if offset < bytes { parts.append(Extent(address: destination + UInt(offset), bytes: bytes - offset)) }
            return parts
            #else
            return [Extent(address: destination, bytes: bytes)]
            #endif
        }
    }

    /// Most pieces a block may be made of for `assemble` to move it.
    static let maxExtents = 64

    /// The page size in bytes.
    static let pageBytes = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))

    /// `bytes` rounded up to whole pages.
    static func pageRounded(_ bytes: Int) -> Int { (bytes + pageBytes - 1) / pageBytes * pageBytes }

    private let state = Mutex(State())

    /// A new large block: mapped, or made by the C allocator (and noted in `allocated`) if mapping fails.
    private func map(bytes: Int) -> UnsafeMutableRawPointer {
        #if canImport(Glibc)
        // Blocks of a huge page or more start on a huge-page boundary (a mapping one huge page longer, trimmed), so
        // that their huge pages can be moved whole (`assemble`).
        let huge = Self.hugePageBytes
        let slack = bytes >= huge ? huge : 0
        if let mapped = mmap(nil, bytes + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
           mapped != MAP_FAILED {
            let address = Int(bitPattern: mapped)
            let head = slack == 0 ? 0 : (address + slack - 1) / slack * slack - address
            let end = Self.pageRounded(head + bytes)
            if head > 0 { munmap(mapped, head) }
            if slack + bytes > end { munmap(mapped + end, slack + bytes - end) }
            let block = mapped + head
            // Transparent huge pages where the system gives them only on request (`enabled` = `madvise`, as here):
            // a 44 MiB block is then faulted in 22 times instead of 11264 (sce3 at 512 MiB: 1.6 million faults of
            // 4 KiB pages a run, 6.7 s of system time, against 23 thousand and 4.7 s).
            if bytes >= huge { _ = madvise(block, bytes, MADV_HUGEPAGE) }
            return block
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
    /// of that size if any, else the smallest pooled one of at most twice that size (`split` after the huge pages
    /// the request needs when a huge page or more is left, which stays pooled), else a new one of that size made
    /// as far as it goes of pooled blocks' pages (`assemble`), after giving back pooled blocks so that `live` (bytes
    /// held, this request included) plus the bytes pooled and the surplus of blocks in use stays within `peak`. Give
    /// the block back with both sizes (`give`).
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
                if let head = state.split(address, bytes: size, keeping: bytes) {
                    state.slackBytes += head - bytes
                    larger = (address, head)
                } else {
                    state.slackBytes += size - bytes
                    larger = (address, size)
                }
            }
            if larger != nil { state.shrink(to: max(0, peak - live - state.slackBytes)) }
            return larger
        }
        if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused.address) { return (pointer, reused.bytes) }
        let pointer = map(bytes: bytes)
        state.withLock { state in
            let address = UInt(bitPattern: pointer)
            if state.pooledBytes > 0, !state.allocated.contains(address) {
                let parts = state.assemble(into: address, bytes: Self.pageRounded(bytes))
                if parts.count > 1 { state.extents[address] = parts }
            }
            state.shrink(to: max(0, peak - live - state.slackBytes))
        }
        return (pointer, bytes)
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
