import Foundation
import ZIPFoundation

/// The entries of a `torch.save` zip archive (`NAME/data.pkl`, `NAME/data/KEY`, `NAME/byteorder`, …): listed and
/// checked with ZIPFoundation (central directory, zip64, CRC of the small entries read whole), and located in the
/// file by walking the local headers, so each stored (uncompressed) entry's bytes can be read in place with `pread`.
struct TorchZipArchive {
    /// One entry: where its bytes start in the file, and how many there are.
    struct Entry {
        /// The entry's path inside the archive (`NAME/data/0`).
        var name: String
        /// Byte offset of the entry's data in the archive file.
        var dataOffset: Int
        /// Bytes of data (stored entries: the uncompressed size).
        var byteCount: Int
        /// Whether the entry is compressed (torch stores everything uncompressed).
        var compressed: Bool
    }

    /// The archive file.
    let path: String
    /// Every entry by name.
    let entries: [String: Entry]
    /// The ZIPFoundation archive (central directory, extraction of small entries).
    private let archive: Archive

    /// The first bytes of a zip file (a local file header's signature).
    static let localHeaderSignature: UInt32 = 0x0403_4B50

    /// Opens the zip archive `file` (already open for `pread`).
    /// - Throws: `CheckpointError.invalidArchive` naming the file when ZIPFoundation cannot read its central
    ///   directory (truncated or not a zip) or its local headers disagree with it.
    init(file: InputFile) throws(CheckpointError) {
        path = file.path
        do {
            archive = try Archive(url: URL(fileURLWithPath: file.path), accessMode: .read)
        } catch {
            throw .invalidArchive(path: file.path, detail: "cannot read it as a zip archive (truncated?): \(error)")
        }
        var listed: [String: ZIPFoundation.Entry] = [:]
        for entry in archive { listed[entry.path] = entry }
        entries = try Self.locate(listed, in: file)
    }

    /// The whole content of entry `name` (for the small ones: `data.pkl`, `byteorder`), CRC-checked by ZIPFoundation.
    /// - Throws: `CheckpointError.invalidArchive` naming the file and entry when it is missing or unreadable.
    func contents(of name: String) throws(CheckpointError) -> [UInt8] {
        guard let entry = archive[name] else {
            throw .invalidArchive(path: path, detail: "it has no entry \(name)")
        }
        var bytes: [UInt8] = []
        do {
            _ = try archive.extract(entry, consumer: { bytes.append(contentsOf: $0) })
        } catch {
            throw .invalidArchive(path: path, detail: "cannot read entry \(name): \(error)")
        }
        return bytes
    }

    /// Walks the local headers from the start of the file: each gives its entry's name and where its data starts;
    /// the sizes come from the central directory (torch sets bit 3 and writes them after the data). Each entry must
    /// lie within the file, and a stored (uncompressed) one must hold as many bytes as it says.
    private static func locate(_ listed: [String: ZIPFoundation.Entry], in file: InputFile) throws(CheckpointError)
        -> [String: Entry] {
        var result: [String: Entry] = [:]
        var offset = 0
        while offset + 30 <= file.size {
            let header = try bytes(file, offset, 30)
            guard le32(header, 0) == localHeaderSignature else { break }
            let flags = le16(header, 6)
            let nameLength = Int(le16(header, 26)), extraLength = Int(le16(header, 28))
            guard offset + 30 + nameLength + extraLength <= file.size else {
                throw .invalidArchive(path: file.path, detail: "local header at byte \(offset) runs past the end of the file")
            }
            let nameBytes = try bytes(file, offset + 30, nameLength)
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard let listedEntry = listed[name] else {
                throw .invalidArchive(path: file.path, detail: "entry \(name) at byte \(offset) is not in the central directory")
            }
            let dataOffset = offset + 30 + nameLength + extraLength
            // The directory's sizes are untrusted 64-bit values: compared with the file before any arithmetic.
            guard let size = Int(exactly: listedEntry.compressedSize), size <= file.size - dataOffset else {
                throw .invalidArchive(path: file.path, detail: "entry \(name) runs past the end of the file (truncated?)")
            }
            let compressed = listedEntry.isCompressed
            guard compressed || listedEntry.uncompressedSize == listedEntry.compressedSize else {
                throw .invalidArchive(path: file.path, detail: "entry \(name) is stored in \(size) bytes but its directory "
                                      + "record says \(listedEntry.uncompressedSize) uncompressed")
            }
            result[name] = Entry(name: name, dataOffset: dataOffset,
                                 byteCount: compressed ? Int(clamping: listedEntry.uncompressedSize) : size,
                                 compressed: compressed)
            offset = dataOffset + size
            if flags & 0x8 != 0 { offset += try descriptorLength(file, at: offset) }
        }
        guard result.count == listed.count else {
            let missing = listed.keys.filter { result[$0] == nil }.sorted().prefix(3)
            throw .invalidArchive(path: file.path, detail: "the local headers do not reach entries \(missing.joined(separator: ", "))")
        }
        return result
    }

    /// The length of the data descriptor at `offset`: an optional signature, the CRC, and 4- or 8-byte sizes
    /// (8 in zip64 archives), told apart by the signature that must follow it.
    private static func descriptorLength(_ file: InputFile, at offset: Int) throws(CheckpointError) -> Int {
        var signed = false
        if offset + 4 <= file.size { signed = le32(try bytes(file, offset, 4), 0) == 0x0807_4B50 }
        let base = signed ? 8 : 4
        for sizes in [8, 16] {
            let next = offset + base + sizes
            guard next + 4 <= file.size else { continue }
            let signature = le32(try bytes(file, next, 4), 0)
            if [localHeaderSignature, 0x0201_4B50, 0x0606_4B50, 0x0605_4B50].contains(signature) { return base + sizes }
        }
        throw .invalidArchive(path: file.path, detail: "no zip header follows the data descriptor at byte \(offset)")
    }

    /// `count` bytes of `file` at `offset`.
    private static func bytes(_ file: InputFile, _ offset: Int, _ count: Int) throws(CheckpointError) -> [UInt8] {
        try file.bytes(offset: offset, count: count)
    }

    /// The little-endian 16-bit integer at `b[i]`.
    private static func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    /// The little-endian 32-bit integer at `b[i]`.
    private static func le32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(le16(b, i)) | UInt32(le16(b, i + 2)) << 16 }
}

extension InputFile {
    /// `count` bytes at `offset`, as an array (for headers and other small reads).
    /// - Throws: the errors of `read(offset:count:into:)`.
    func bytes(offset: Int, count: Int) throws(CheckpointError) -> [UInt8] {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 1)
        defer { buffer.deallocate() }
        try read(offset: offset, count: count, into: buffer)
        return Array(UnsafeRawBufferPointer(start: buffer, count: count))
    }
}
