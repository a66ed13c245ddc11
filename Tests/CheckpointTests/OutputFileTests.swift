@testable import Checkpoint
import CFileOps
import Foundation
import IR
import XCTest

/// `OutputFile` writes whole aligned blocks past the page cache and the partial blocks at their ends through it:
/// whatever the offsets, lengths and buffer addresses, the file holds exactly the bytes written.
final class OutputFileTests: XCTestCase {
    private let block = OutputFile.uncachedAlignment

    /// Pieces that cover a file of a few blocks front to back, at every kind of offset: aligned and not, buffers that
    /// agree with the offset modulo the block (so the middle goes uncached) and buffers that do not.
    func testPiecesAtAnyOffsetReadBackExactly() throws {
        for directory in try candidateDirectories() {
            let path = directory + "/pieces.bin"
            let total = 6 * block + 1234
            let expected = (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
            // (length, agrees): each piece starts where the last ended.
            let pieces: [(Int, Bool)] = [
                (7, true), (block - 7, true), (block, true), (block + 3, true), (block - 3 + 10, false),
                (2 * block - 10, true), (1234 - 7, true), (7, false),
            ]
            XCTAssertEqual(pieces.reduce(0) { $0 + $1.0 }, total)
            let file = try OutputFile(creating: path)
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: total + 2 * block, alignment: block)
            defer { buffer.deallocate() }
            var offset = 0
            for (length, agrees) in pieces {
                let start = buffer + (offset % block) + (agrees ? 0 : 1)
                expected[offset..<offset + length].withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: length) }
                XCTAssertEqual((Int(bitPattern: start) - offset) % block == 0, agrees)
                try file.write(start, count: length, at: offset)
                offset += length
            }
            if Self.isLocalBlockFileSystem(directory) {
                XCTAssertTrue(file.writesPastPageCache, "\(directory): the aligned blocks should have gone past the page cache")
            }
            try file.finish()
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data(expected), directory)
        }
    }

    /// Whether `path` is on ext2/3/4, XFS, btrfs or F2FS, where every aligned block must go past the page cache (a
    /// refused uncached write would quietly fall back to the page cache: only this check notices).
    static func isLocalBlockFileSystem(_ path: String) -> Bool { mg_is_local_block_file_system_at(path) == 1 }

    /// Pieces written out of order (a later block first, then the ones before it) and a piece rewritten: the file
    /// holds the last bytes written at each offset.
    func testPiecesOutOfOrderAndRewrittenReadBackExactly() throws {
        for directory in try candidateDirectories() {
            let path = directory + "/out-of-order.bin"
            let total = 3 * block + 100
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: total + block, alignment: block)
            defer { buffer.deallocate() }
            var expected = [UInt8](repeating: 0, count: total)
            let file = try OutputFile(creating: path)
            for (offset, length, value) in [(2 * block - 50, block + 150, 3), (0, 2 * block - 50, 1), (10, block, 7)] {
                let start = buffer + offset % block
                start.initializeMemory(as: UInt8.self, repeating: UInt8(value), count: length)
                try file.write(start, count: length, at: offset)
                for i in offset..<offset + length { expected[i] = UInt8(value) }
            }
            try file.finish()
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data(expected), directory)
        }
    }

    /// A safetensors file of several MiB whose tensors start at offsets that are not multiples of the block nor, for
    /// the f32 one after an odd bf16 count, of 4: every value reads back exactly, written whole or in pieces.
    func testLargeTensorsAtUnalignedOffsetsReadBackExactly() throws {
        for directory in try candidateDirectories() {
            let layout: [(name: String, dtype: DType, shape: [Int])] = [
                ("a", .bf16, [1_000_001]), ("b", .f32, [3, 400_003]), ("c", .f16, [2_500_000]),
            ]
            let values = layout.enumerated().map { i, t in
                sampleFloats(count: t.shape.reduce(1, *), seed: UInt64(i + 10)).map { DTypeConversion.round($0, to: t.dtype) }
            }
            let path = directory + "/model.safetensors"
            let writer = try SafetensorsWriter(path: path, tensors: layout)
            for (i, tensor) in layout.enumerated().reversed() {
                try values[i].withUnsafeBufferPointer { (all) throws(CheckpointError) in
                    if i == 1 {
                        try writer.write(tensor.name, floats: all)
                    } else {
                        var at = 0
                        for piece in [1, 4095, 300_001, all.count] where at < all.count {
                            let count = min(piece, all.count - at)
                            try writer.write(tensor.name, elementOffset: at, floats: UnsafeBufferPointer(rebasing: all[at..<at + count]))
                            at += count
                        }
                    }
                }
            }
            try writer.finish()
            let model = try SafetensorsModel(directory: directory)
            for (i, tensor) in layout.enumerated() {
                let stored = try XCTUnwrap(model.tensor(tensor.name))
                if i == 1 { XCTAssertNotEqual(stored.fileOffset % 4, 0, "the f32 tensor should start off a 4-byte boundary") }
                XCTAssertEqual(bits(try model.floats(tensor.name)), bits(values[i]), "\(directory) \(tensor.name)")
            }
        }
    }

    /// tmpfs has no device to write past its pages to (and newer kernels accept `O_DIRECT` there): the file goes
    /// through the page cache.
    func testTmpfsIsWrittenThroughThePageCache() throws {
        let directories = try candidateDirectories()
        guard directories.count == 2 else { throw XCTSkip("no /dev/shm on this machine") }
        let file = try OutputFile(creating: directories[1] + "/tmpfs.bin")
        XCTAssertFalse(file.writesPastPageCache)
        try file.finish()
    }

    /// A fresh temporary directory, plus one on tmpfs (which refuses uncached writes) where the machine has one.
    private func candidateDirectories() throws -> [String] {
        var directories = [try makeTemporaryDirectory()]
        let shm = "/dev/shm/CheckpointTests-\(UUID().uuidString)"
        if (try? FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: false)) != nil {
            addTeardownBlock { try? FileManager.default.removeItem(atPath: shm) }
            directories.append(shm)
        }
        return directories
    }
}
