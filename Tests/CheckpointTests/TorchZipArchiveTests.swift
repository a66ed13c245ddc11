@testable import Checkpoint
import Foundation
import XCTest

/// A zip archive written byte by byte, for the reader's tests: stored entries with the zip64 records torch's writer
/// adds, and fields that can be set to any value (the way a hostile or damaged file would).
private struct TestZip {
    struct Entry {
        var name: String
        var data: [UInt8]
        /// Directory overrides: sizes and offset written in the zip64 extra field (the record saying all ones).
        var zip64Stored: UInt64?
        var zip64Uncompressed: UInt64?
        var zip64Offset: UInt64?
        /// A CRC other than the data's.
        var crc: UInt32?
        /// The name written in the local header, when not `name`.
        var localName: String?
        /// The directory's offset of the local header, when not where it is written.
        var headerOffset: UInt32?
    }

    var entries: [Entry]
    /// The count of directory records the end records state, when not the real one.
    var statedCount: UInt64?
    /// The directory offset the zip64 end record states, when not the real one.
    var statedDirectoryOffset: UInt64?

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        func u16(_ v: Int) { out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(v >> (8 * UInt32(i)) & 0xFF)) } }
        func u64(_ v: UInt64) { for i in 0..<8 { out.append(UInt8(v >> (8 * UInt64(i)) & 0xFF)) } }
        var offsets: [Int] = []
        for entry in entries {
            offsets.append(out.count)
            let name = Array((entry.localName ?? entry.name).utf8)
            u32(0x0403_4B50); u16(20); u16(0x0800); u16(0); u16(0); u16(0)
            u32(entry.crc ?? Self.crc32(entry.data)); u32(UInt32(entry.data.count)); u32(UInt32(entry.data.count))
            u16(name.count); u16(0)
            out += name + entry.data
        }
        let directory = out.count
        for (entry, offset) in zip(entries, offsets) {
            let name = Array(entry.name.utf8)
            let zip64 = entry.zip64Stored != nil || entry.zip64Uncompressed != nil || entry.zip64Offset != nil
            u32(0x0201_4B50); u16(45); u16(45); u16(0x0800); u16(0); u16(0); u16(0)
            u32(entry.crc ?? Self.crc32(entry.data))
            u32(entry.zip64Stored == nil ? UInt32(entry.data.count) : .max)
            u32(entry.zip64Uncompressed == nil ? UInt32(entry.data.count) : .max)
            let fields = [entry.zip64Uncompressed, entry.zip64Stored, entry.zip64Offset].compactMap { $0 }
            u16(name.count); u16(zip64 ? 4 + 8 * fields.count : 0); u16(0); u16(0); u16(0); u32(0)
            u32(entry.zip64Offset == nil ? entry.headerOffset ?? UInt32(offset) : .max)
            out += name
            if zip64 {
                u16(1); u16(8 * fields.count)
                fields.forEach(u64)
            }
        }
        let size = out.count - directory, count = statedCount ?? UInt64(entries.count)
        let zip64End = out.count
        u32(0x0606_4B50); u64(44); u16(45); u16(45); u32(0); u32(0); u64(count); u64(count); u64(UInt64(size))
        u64(statedDirectoryOffset ?? UInt64(directory))
        u32(0x0706_4B50); u32(0); u64(UInt64(zip64End)); u32(1)
        u32(0x0605_4B50); u16(0); u16(0); u16(Int(min(count, 0xFFFF))); u16(Int(min(count, 0xFFFF)))
        u32(UInt32(size)); u32(UInt32(directory)); u16(0)
        return out
    }
}

/// `TorchZipArchive`, the `.bin` reader's zip layer: what torch writes is read, and every value a damaged or hostile
/// archive can give is refused with the file and entry named, never trusted (no trap, no read outside the file).
final class TorchZipArchiveTests: XCTestCase {
    private let fixtures = pytorchFixturesDirectory

    /// Opens `bytes` written to a file.
    private func open(_ bytes: [UInt8]) throws -> (path: String, result: Result<TorchZipArchive, CheckpointError>) {
        let path = try makeTemporaryDirectory() + "/archive.bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do throws(CheckpointError) {
            return (path, .success(try TorchZipArchive(file: InputFile(path: path))))
        } catch {
            return (path, .failure(error))
        }
    }

    /// Asserts that `bytes` are refused with a message naming the file and containing `phrase`.
    private func assertRefused(_ bytes: [UInt8], _ phrase: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (path, result) = try open(bytes)
        guard case .failure(let error) = result else { return XCTFail("accepted", file: file, line: line) }
        XCTAssertTrue(error.description.contains(path) && error.description.contains(phrase),
                      "\"\(error.description)\" does not mention \(phrase)", file: file, line: line)
    }

    private func entry(_ name: String, _ data: [UInt8]) -> TestZip.Entry { TestZip.Entry(name: name, data: data) }

    func testWhatTorchWritesIsReadWithItsCRCs() throws {
        let archive = try TorchZipArchive(file: InputFile(path: fixtures + "/dtypes/pytorch_model.bin"))
        XCTAssertEqual(String(decoding: try archive.contents(of: "pytorch_model/byteorder"), as: UTF8.self), "little")
        XCTAssertEqual(try archive.contents(of: "pytorch_model/data.pkl").count, 1575)
        let built = TestZip(entries: [entry("a/data.pkl", Array("pickle".utf8)), entry("a/data/0", [1, 2, 3, 4])])
        guard case .success(let zip) = try open(built.bytes).result else { return XCTFail("the test archive was refused") }
        XCTAssertEqual(Set(zip.entries.keys), ["a/data.pkl", "a/data/0"])
        XCTAssertEqual(try zip.contents(of: "a/data/0"), [1, 2, 3, 4])
        XCTAssertEqual(zip.entries["a/data/0"]?.byteCount, 4)
    }

    /// Found by `scripts/fuzz.sh pickle` (`rejects/zip64-size-overflow.bin`, minimized from a fuzzed shard): a zip64
    /// size above `Int.max` trapped in `Int(_:)`; and (`rejects/zip64-directory-offset-overflow.bin`, 103 bytes) a
    /// zip64 directory offset above `Int64.max` trapped inside ZIPFoundation 0.9.20 (`off_t(offset)` in
    /// `Data.readStruct`), which the reader used then. Every value the directory gives is now checked before use.
    func testFuzzFindingsAreRefused() throws {
        for name in ["zip64-size-overflow.bin", "zip64-directory-offset-overflow.bin"] {
            assertCheckpointError(mentioning: [name, "is not a readable torch.save archive"]) { () throws(CheckpointError) in
                _ = try PyTorchModel.readTensors(path: fixtures + "/rejects/" + name)
            }
        }
    }

    func testZip64ValuesPastTheFileAreRefused() throws {
        var huge = entry("a/data/0", [1, 2, 3, 4])
        huge.zip64Stored = 1 << 63 + 5
        huge.zip64Uncompressed = 1 << 63 + 5
        try assertRefused(TestZip(entries: [huge]).bytes, "entry a/data/0 lies outside the file")
        huge.zip64Stored = 1 << 40
        huge.zip64Uncompressed = 1 << 40
        try assertRefused(TestZip(entries: [huge]).bytes, "entry a/data/0 runs past the end of the file")
        var offset = entry("a/data/0", [1, 2, 3, 4])
        offset.zip64Offset = .max
        try assertRefused(TestZip(entries: [offset]).bytes, "entry a/data/0 lies outside the file")
        var directory = TestZip(entries: [entry("a/data/0", [1])])
        directory.statedDirectoryOffset = .max - 3
        try assertRefused(directory.bytes, "zip64 end record gives sizes past any file")
        directory.statedDirectoryOffset = 1 << 40
        try assertRefused(directory.bytes, "does not fit before its end record")
        var count = TestZip(entries: [entry("a/data/0", [1])])
        count.statedCount = 1 << 62
        try assertRefused(count.bytes, "does not fit before its end record")
        count.statedCount = 2
        try assertRefused(count.bytes, "does not fit before its end record")
    }

    func testEntriesMustNotOverlapOrRepeat() throws {
        var first = entry("a/data/0", [1, 2, 3, 4])
        first.zip64Stored = 60  // its data now covers the next entry's header
        first.zip64Uncompressed = 60
        try assertRefused(TestZip(entries: [first, entry("a/data/1", Array(repeating: 9, count: 64))]).bytes,
                          "entries a/data/0 and a/data/1 overlap")
        try assertRefused(TestZip(entries: [entry("a/x", [1]), entry("a/x", [2])]).bytes, "entry a/x is listed twice")
        var moved = entry("a/y", [2])
        moved.headerOffset = 0  // the directory points both records at the first local header
        try assertRefused(TestZip(entries: [entry("a/x", [1]), moved]).bytes,
                          "the local header of entry a/y at byte 0 does not match its directory record")
    }

    /// A stored entry whose record claims another size than it stores would let a tensor view the bytes after it.
    func testStoredEntriesMustHoldWhatTheySay() throws {
        var lying = entry("a/data/0", [1, 2, 3, 4])
        lying.zip64Uncompressed = 8
        try assertRefused(TestZip(entries: [lying]).bytes, "entry a/data/0 is stored in 4 bytes but its directory record says 8")
    }

    func testSmallEntriesAreCRCChecked() throws {
        var corrupted = entry("a/data.pkl", Array("pickle".utf8))
        corrupted.crc = 1234
        guard case .success(let zip) = try open(TestZip(entries: [corrupted]).bytes).result else { return XCTFail() }
        assertCheckpointError(mentioning: ["entry a/data.pkl fails its CRC-32 check"]) { () throws(CheckpointError) in
            _ = try zip.contents(of: "a/data.pkl")
        }
    }

    /// A shard cut at every length is refused, naming the file, and never traps.
    func testArchivesCutAtEveryLengthAreRefused() throws {
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixtures + "/sharded/pytorch_model-00001-of-00002.bin")))
        let path = try makeTemporaryDirectory() + "/pytorch_model.bin"
        for length in 4..<whole.count {
            try Data(whole.prefix(length)).write(to: URL(fileURLWithPath: path))
            assertCheckpointError(mentioning: [path]) { () throws(CheckpointError) in
                _ = try PyTorchModel.readTensors(path: path)
            }
        }
    }
}
