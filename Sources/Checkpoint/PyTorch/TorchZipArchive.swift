import CZlib

/// The entries of a `torch.save` zip archive (`NAME/data.pkl`, `NAME/data/KEY`, `NAME/byteorder`, …), read from its
/// central directory (zip64 included, as PyTorch's writer always adds it) so that each stored (uncompressed) entry's
/// bytes can be read in place with `pread`. The archive is untrusted: every offset, size and count it gives is
/// checked against the file before it is used — the directory lies within the file and after the entries, each
/// entry's local header and data lie before the directory and after the previous entry (no overlap), names are
/// unique, a stored entry holds as many bytes as it says — and the small entries read whole are CRC-checked (the
/// tensor storage entries are checked as they are read, by `StorageChecks`).
/// Follows the zip format (PKWARE APPNOTE 6.3, sections 4.3 and 4.5.3) as far as `torch.save` uses it; one disk,
/// no encryption.
struct TorchZipArchive {
    /// One entry: where its bytes start in the file, and how many there are.
    struct Entry {
        /// The entry's path inside the archive (`NAME/data/0`).
        var name: String
        /// Byte offset of the entry's data in the archive file.
        var dataOffset: Int
        /// Bytes of data as stored (for a stored entry, also its size).
        var byteCount: Int
        /// Whether the entry is compressed (torch stores everything uncompressed).
        var compressed: Bool
        /// The CRC-32 of the uncompressed data, as the directory gives it.
        var crc32: UInt32
    }

    /// The archive file.
    let path: String
    /// Every entry by name.
    let entries: [String: Entry]
    /// The file, open for `pread`.
    private let file: InputFile

    /// The first bytes of a zip file (a local file header's signature).
    static let localHeaderSignature: UInt32 = 0x0403_4B50
    /// A central directory file header's signature.
    static let centralHeaderSignature: UInt32 = 0x0201_4B50
    /// The end of central directory record's signature.
    static let endRecordSignature: UInt32 = 0x0605_4B50
    /// The zip64 end of central directory record's signature.
    static let zip64EndRecordSignature: UInt32 = 0x0606_4B50
    /// The zip64 end of central directory locator's signature.
    static let zip64LocatorSignature: UInt32 = 0x0706_4B50

    /// Opens the zip archive `file` (already open for `pread`).
    /// - Throws: `CheckpointError.invalidArchive` naming the file and what is wrong: no end of central directory
    ///   record (not a zip, or truncated), a directory or entry that lies outside the file or overlaps another, a
    ///   name listed twice, a local header that disagrees with the directory, a multi-disk or encrypted archive.
    init(file: InputFile) throws(CheckpointError) {
        path = file.path
        self.file = file
        let directory = try Self.directory(of: file)
        entries = try Self.entries(file, directory)
    }

    /// The whole content of entry `name` (for the small ones: `data.pkl`, `byteorder`), CRC-checked.
    /// - Throws: `CheckpointError.invalidArchive` naming the file and entry when it is missing, compressed, or its
    ///   bytes do not match its CRC-32.
    func contents(of name: String) throws(CheckpointError) -> [UInt8] {
        guard let entry = entries[name] else { throw .invalidArchive(path: path, detail: "it has no entry \(name)") }
        guard !entry.compressed else {
            throw .invalidArchive(path: path, detail: "entry \(name) is compressed; torch.save stores every entry uncompressed")
        }
        let bytes = try file.bytes(offset: entry.dataOffset, count: entry.byteCount)
        let crc = bytes.withUnsafeBufferPointer { buffer in
            UInt32(CZlib.crc32_z(0, buffer.baseAddress, buffer.count))
        }
        guard crc == entry.crc32 else {
            throw .invalidArchive(path: path, detail: "entry \(name) fails its CRC-32 check (corrupted?)")
        }
        return bytes
    }

    // MARK: the central directory

    /// Where the central directory is and how many records it holds; `end` is where the end records start (the
    /// directory must end there or before).
    private struct Directory {
        var offset: Int
        var size: Int
        var count: Int
        var end: Int
    }

    /// Finds the end of central directory record (the last signature in the file's last 64 KiB + 22 bytes, as
    /// CPython's `zipfile` and torch's miniz look for it), and the zip64 end record when a locator precedes it.
    private static func directory(of file: InputFile) throws(CheckpointError) -> Directory {
        let tailLength = min(file.size, 22 + 0xFFFF)
        let tail = try file.bytes(offset: file.size - tailLength, count: tailLength)
        var found: Int?
        var position = tailLength - 22
        while position >= 0 {
            if le32(tail, position) == endRecordSignature {
                found = position
                break
            }
            position -= 1
        }
        guard let record = found else {
            throw .invalidArchive(path: file.path, detail: "it has no end of central directory record: not a zip archive, or truncated")
        }
        let end = file.size - tailLength + record
        guard le16(tail, record + 4) == 0 || le16(tail, record + 4) == 0xFFFF,
              le16(tail, record + 6) == 0 || le16(tail, record + 6) == 0xFFFF else {
            throw .invalidArchive(path: file.path, detail: "it spans several disks")
        }
        var directory = Directory(offset: Int(le32(tail, record + 16)), size: Int(le32(tail, record + 12)),
                                  count: Int(le16(tail, record + 10)), end: end)
        if end >= 20, le32(try file.bytes(offset: end - 20, count: 4), 0) == zip64LocatorSignature {
            directory = try zip64Directory(file, locator: end - 20)
        } else if directory.count == 0xFFFF || directory.size == 0xFFFF_FFFF || directory.offset == 0xFFFF_FFFF {
            throw .invalidArchive(path: file.path, detail: "its end record needs a zip64 record, which is missing")
        }
        guard directory.offset <= directory.end, directory.size <= directory.end - directory.offset,
              directory.count <= directory.size / 46 else {
            throw .invalidArchive(path: file.path, detail: "its central directory (\(directory.count) entries, "
                                  + "\(directory.size) bytes at byte \(directory.offset)) does not fit before its end record")
        }
        return directory
    }

    /// The directory as the zip64 end record (found through the locator at byte `locator`) gives it.
    private static func zip64Directory(_ file: InputFile, locator: Int) throws(CheckpointError) -> Directory {
        let fields = try file.bytes(offset: locator, count: 20)
        guard let start = Int(exactly: le64(fields, 8)), start <= locator - 56 else {
            throw .invalidArchive(path: file.path, detail: "its zip64 end record lies outside the file")
        }
        let record = try file.bytes(offset: start, count: 56)
        guard le32(record, 0) == zip64EndRecordSignature else {
            throw .invalidArchive(path: file.path, detail: "no zip64 end record at byte \(start), where its locator points")
        }
        guard le32(record, 16) == 0, le32(record, 20) == 0 else {
            throw .invalidArchive(path: file.path, detail: "it spans several disks")
        }
        guard let count = Int(exactly: le64(record, 32)), let size = Int(exactly: le64(record, 40)),
              let offset = Int(exactly: le64(record, 48)) else {
            throw .invalidArchive(path: file.path, detail: "its zip64 end record gives sizes past any file")
        }
        return Directory(offset: offset, size: size, count: count, end: start)
    }

    /// Reads the directory's records one by one (a hostile size never becomes one large read) and checks each
    /// entry's local header and data.
    private static func entries(_ file: InputFile, _ directory: Directory) throws(CheckpointError) -> [String: Entry] {
        let path = file.path
        let directoryEnd = directory.offset + directory.size
        var result: [String: Entry] = [:]
        var spans: [(start: Int, end: Int, name: String)] = []
        var position = directory.offset
        for index in 0..<directory.count {
            let fixed = position + 46 <= directoryEnd ? try file.bytes(offset: position, count: 46) : []
            guard fixed.count == 46, le32(fixed, 0) == centralHeaderSignature else {
                throw .invalidArchive(path: path, detail: "central directory record \(index) is missing or cut short")
            }
            let nameLength = Int(le16(fixed, 28)), extraLength = Int(le16(fixed, 30))
            let next = position + 46 + nameLength + extraLength + Int(le16(fixed, 32))
            guard next <= directoryEnd else {
                throw .invalidArchive(path: path, detail: "central directory record \(index) runs past the directory")
            }
            let variable = try file.bytes(offset: position + 46, count: nameLength + extraLength)
            let nameBytes = Array(variable[..<nameLength])
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard le16(fixed, 8) & 0x1 == 0 else { throw .invalidArchive(path: path, detail: "entry \(name) is encrypted") }
            let sizes = try zip64Sizes(Array(variable[nameLength...]), stored: le32(fixed, 20),
                                       uncompressed: le32(fixed, 24), headerOffset: le32(fixed, 42), path: path, name: name)
            guard let size = Int(exactly: sizes.stored), let header = Int(exactly: sizes.headerOffset),
                  header <= directory.offset - 30 else {
                throw .invalidArchive(path: path, detail: "entry \(name) lies outside the file (truncated?)")
            }
            let compressed = le16(fixed, 10) != 0
            guard compressed || sizes.uncompressed == sizes.stored else {
                throw .invalidArchive(path: path, detail: "entry \(name) is stored in \(size) bytes but its directory "
                                      + "record says \(sizes.uncompressed) uncompressed")
            }
            let local = try file.bytes(offset: header, count: 30)
            let localName = Int(le16(local, 26)), localExtra = Int(le16(local, 28))
            guard le32(local, 0) == localHeaderSignature, localName == nameLength,
                  header + 30 + localName <= directory.offset,
                  try file.bytes(offset: header + 30, count: localName) == nameBytes else {
                throw .invalidArchive(path: path, detail: "the local header of entry \(name) at byte \(header) does not match its directory record")
            }
            let dataOffset = header + 30 + localName + localExtra
            guard dataOffset <= directory.offset, size <= directory.offset - dataOffset else {
                throw .invalidArchive(path: path, detail: "entry \(name) runs past the end of the file (truncated?)")
            }
            guard result[name] == nil else { throw .invalidArchive(path: path, detail: "entry \(name) is listed twice") }
            result[name] = Entry(name: name, dataOffset: dataOffset, byteCount: size, compressed: compressed,
                                 crc32: le32(fixed, 16))
            spans.append((header, dataOffset + size, name))
            position = next
        }
        var previous: (end: Int, name: String)?
        for span in spans.sorted(by: { $0.start < $1.start }) {
            if let previous, span.start < previous.end {
                throw .invalidArchive(path: path, detail: "entries \(previous.name) and \(span.name) overlap")
            }
            previous = (span.end, span.name)
        }
        return result
    }

    /// The sizes and local header offset of a directory record: the saturated ones (all ones) are given by its zip64
    /// extra field (`extra`, the record's extra fields), which lists only those, in the order uncompressed size,
    /// stored size, offset.
    private static func zip64Sizes(_ extra: [UInt8], stored: UInt32, uncompressed: UInt32, headerOffset: UInt32,
                                   path: String, name: String) throws(CheckpointError)
        -> (stored: UInt64, uncompressed: UInt64, headerOffset: UInt64) {
        var result = (stored: UInt64(stored), uncompressed: UInt64(uncompressed), headerOffset: UInt64(headerOffset))
        guard stored == .max || uncompressed == .max || headerOffset == .max else { return result }
        var position = 0
        while position + 4 <= extra.count {
            let id = le16(extra, position), end = position + 4 + Int(le16(extra, position + 2))
            guard end <= extra.count else { break }
            if id == 0x0001 {
                var values: [UInt64] = []
                for field in stride(from: position + 4, to: end - 7, by: 8) { values.append(le64(extra, field)) }
                let needed = [uncompressed, stored, headerOffset].filter { $0 == .max }.count
                guard values.count >= needed else { break }
                var next = values.makeIterator()
                if uncompressed == .max, let value = next.next() { result.uncompressed = value }
                if stored == .max, let value = next.next() { result.stored = value }
                if headerOffset == .max, let value = next.next() { result.headerOffset = value }
                return result
            }
            position = end
        }
        throw .invalidArchive(path: path, detail: "entry \(name) needs a zip64 extra field, which is missing or short")
    }

    /// The little-endian 16-bit integer at `b[i]`.
    private static func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    /// The little-endian 32-bit integer at `b[i]`.
    private static func le32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(le16(b, i)) | UInt32(le16(b, i + 2)) << 16 }
    /// The little-endian 64-bit integer at `b[i]`.
    private static func le64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(le32(b, i)) | UInt64(le32(b, i + 4)) << 32 }
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
