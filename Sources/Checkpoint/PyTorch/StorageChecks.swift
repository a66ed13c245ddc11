import CZlib
import Synchronization

/// The CRC-32 checks of one `torch.save` archive's tensor storage entries (`NAME/data/KEY`), made on the bytes the
/// merge reads anyway, so no byte is read twice: every read (`note`) adds the CRC-32 of the bytes of each storage it
/// had not read before, and once a storage's bytes have all been read — in any order, in blocks from several
/// threads, parts read again — the pieces' CRCs are combined (`crc32_combine`) and compared with the one the zip
/// directory gives. Bytes of a storage that no tensor views (a tensor saved as a view into a larger one) are read
/// from the file then; a storage whose tensors are read only in part (`--unsafe-truncate-embeddings`) is never
/// complete, so never checked.
final class StorageChecks: Sendable {
    /// One storage entry of the archive.
    struct Storage: Sendable {
        /// The entry's name in the archive (`NAME/data/KEY`).
        var entry: String
        /// A tensor it holds, for messages.
        var tensor: String
        /// Byte range of its data in the archive file.
        var bytes: Range<Int>
        /// The CRC-32 the zip directory gives.
        var crc32: UInt32
        /// The parts of `bytes` (relative to its start) no tensor views, sorted: read from the file when the rest
        /// has been read.
        var unviewed: [Range<Int>]
    }

    /// A read part of a storage (offsets relative to its start) and its CRC-32.
    private struct Piece {
        var range: Range<Int>
        var crc: UInt
    }

    /// What is known of one storage.
    private enum Progress {
        /// The parts read so far: sorted, disjoint, none adjacent to the next.
        case reading([Piece])
        case verified
        case failed
    }

    /// The archive file.
    private let file: InputFile
    /// The storages, sorted by `bytes.lowerBound` (entries never overlap).
    private let storages: [Storage]
    /// Each storage's progress, by index into `storages`; none until its first read.
    private let progress: Mutex<[Int: Progress]>

    /// The checks of `file`'s `storages` (in any order; empty ones are left out: nothing is read from them).
    init(file: InputFile, storages: [Storage]) {
        self.file = file
        self.storages = storages.filter { !$0.bytes.isEmpty }.sorted { $0.bytes.lowerBound < $1.bytes.lowerBound }
        progress = Mutex([:])
    }

    /// The checks of the storage entries of `file` that `tensors` view (each tensor with its entry).
    convenience init(file: InputFile, tensors: [(tensor: StoredTensor, entry: TorchZipArchive.Entry)]) {
        var byEntry: [String: (storage: Storage, views: [Range<Int>])] = [:]
        var order: [String] = []
        for (tensor, entry) in tensors {
            let start = entry.dataOffset
            let view = (tensor.fileOffset - start)..<(tensor.fileOffset - start + tensor.byteCount)
            if byEntry[entry.name] == nil {
                order.append(entry.name)
                let storage = Storage(entry: entry.name, tensor: tensor.name, bytes: start..<(start + entry.byteCount),
                                      crc32: entry.crc32, unviewed: [])
                byEntry[entry.name] = (storage, [])
            }
            if !view.isEmpty { byEntry[entry.name]!.views.append(view) }
        }
        self.init(file: file, storages: order.map { name in
            var (storage, views) = byEntry[name]!
            storage.unviewed = Self.gaps(in: 0..<storage.bytes.count, besides: views.sorted { $0.lowerBound < $1.lowerBound })
            return storage
        })
    }

    /// Notes that `count` bytes at `offset` of the file were read into `bytes`: adds what they hold of each storage
    /// not read before, and checks each storage they complete.
    /// - Throws: `CheckpointError.invalidArchive` naming the file and entry when a storage they complete (or one that
    ///   already failed) does not match its CRC-32; the errors of `InputFile.read` for its unviewed bytes.
    func note(offset: Int, count: Int, bytes: UnsafeRawPointer) throws(CheckpointError) {
        let end = offset + count
        // The first storage ending after `offset`.
        var low = 0, high = storages.count
        while low < high {
            let middle = (low + high) / 2
            if storages[middle].bytes.upperBound <= offset { low = middle + 1 } else { high = middle }
        }
        var index = low
        while index < storages.count, storages[index].bytes.lowerBound < end {
            let storage = storages[index]
            let start = storage.bytes.lowerBound
            let read = (max(offset, start) - start)..<(min(end, storage.bytes.upperBound) - start)
            try add(read, of: index) { bytes + (start + $0 - offset) }
            index += 1
        }
    }

    /// Adds `read` (relative to storage `index`'s start; `source(i)` points at the storage's byte `i` for `i` in
    /// `read`), checking the storage if that completes it.
    private func add(_ read: Range<Int>, of index: Int, from source: (Int) -> UnsafeRawPointer) throws(CheckpointError) {
        // The parts not read before, their CRCs computed outside the lock.
        let missing: [Range<Int>]
        switch progress.withLock({ $0[index] }) {
        case .verified: return
        case .failed: throw failure(index)
        case .reading(let pieces): missing = Self.gaps(in: read, besides: pieces.map(\.range))
        case nil: missing = [read]
        }
        guard !missing.isEmpty else { return }
        let computed = missing.map { Piece(range: $0, crc: Self.crc(source($0.lowerBound), $0.count)) }
        let storage = storages[index]
        let outcome = try progress.withLock { (all: inout [Int: Progress]) throws(CheckpointError) -> Bool? in
            var pieces: [Piece]
            switch all[index] {
            case .verified: return true
            case .failed: return false
            case .reading(let current): pieces = current
            case nil: pieces = []
            }
            for piece in computed {
                // Another thread may have read part of it meanwhile: only what is still missing is added.
                let still = Self.gaps(in: piece.range, besides: pieces.map(\.range))
                if still == [piece.range] {
                    Self.insert(piece, into: &pieces)
                } else {
                    for range in still {
                        Self.insert(Piece(range: range, crc: Self.crc(source(range.lowerBound), range.count)), into: &pieces)
                    }
                }
            }
            let remaining = Self.gaps(in: 0..<storage.bytes.count, besides: pieces.map(\.range))
            if !remaining.isEmpty, remaining.allSatisfy({ gap in
                storage.unviewed.contains { $0.lowerBound <= gap.lowerBound && gap.upperBound <= $0.upperBound }
            }) {
                // Only bytes no tensor views are left: read them now.
                for gap in remaining {
                    let buffer = UnsafeMutableRawPointer.allocate(byteCount: gap.count, alignment: 1)
                    defer { buffer.deallocate() }
                    try file.read(offset: storage.bytes.lowerBound + gap.lowerBound, count: gap.count, into: buffer)
                    Self.insert(Piece(range: gap, crc: Self.crc(buffer, gap.count)), into: &pieces)
                }
            }
            guard pieces.count == 1, pieces[0].range == 0..<storage.bytes.count else {
                all[index] = .reading(pieces)
                return nil
            }
            let matches = UInt32(truncatingIfNeeded: pieces[0].crc) == storage.crc32
            all[index] = matches ? .verified : .failed
            return matches
        }
        if outcome == false { throw failure(index) }
    }

    /// The error for storage `index`, whose bytes do not match its CRC-32.
    private func failure(_ index: Int) -> CheckpointError {
        .invalidArchive(path: file.path, detail: "entry \(storages[index].entry) (the storage of tensor "
                        + "\(storages[index].tensor)) fails its CRC-32 check (corrupted?)")
    }

    /// The CRC-32 of `count` bytes at `start`.
    private static func crc(_ start: UnsafeRawPointer, _ count: Int) -> UInt {
        UInt(CZlib.crc32_z(0, start.assumingMemoryBound(to: UInt8.self), count))
    }

    /// Inserts `piece` (disjoint from `pieces`) into `pieces`, joined with the pieces it touches.
    private static func insert(_ piece: Piece, into pieces: inout [Piece]) {
        var piece = piece
        var at = pieces.firstIndex { $0.range.lowerBound > piece.range.lowerBound } ?? pieces.count
        if at > 0, pieces[at - 1].range.upperBound == piece.range.lowerBound {
            let left = pieces.remove(at: at - 1)
            at -= 1
            piece = Piece(range: left.range.lowerBound..<piece.range.upperBound,
                          crc: CZlib.crc32_combine(left.crc, piece.crc, off_t(piece.range.count)))
        }
        if at < pieces.count, pieces[at].range.lowerBound == piece.range.upperBound {
            let right = pieces.remove(at: at)
            piece = Piece(range: piece.range.lowerBound..<right.range.upperBound,
                          crc: CZlib.crc32_combine(piece.crc, right.crc, off_t(right.range.count)))
        }
        pieces.insert(piece, at: at)
    }

    /// The parts of `range` that none of `covered` (sorted by start, possibly overlapping) covers, in order.
    static func gaps(in range: Range<Int>, besides covered: [Range<Int>]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var next = range.lowerBound
        for part in covered where part.upperBound > next {
            if part.lowerBound >= range.upperBound { break }
            if part.lowerBound > next { result.append(next..<part.lowerBound) }
            next = max(next, part.upperBound)
            if next >= range.upperBound { break }
        }
        if next < range.upperBound { result.append(next..<range.upperBound) }
        return result
    }
}
