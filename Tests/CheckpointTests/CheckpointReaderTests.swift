import Checkpoint
import Foundation
import IR
import XCTest

/// The byte ranges a `CheckpointReader` reports, read back with `readBytes` as the executor does.
final class CheckpointReaderTests: XCTestCase {
    func testByteRangesReadWithReadBytesDecodeToTheTensor() throws {
        let directory = try makeTemporaryDirectory()
        let values = sampleFloats(count: 24, seed: 5)
        try writeCheckpoint(path: directory + "/model.safetensors", tensors: [
            ("a", .bf16, [4, 6], values), ("b", .f32, [24], values),
        ])
        let reader: any CheckpointReader = try CheckpointFormat.open(directory: directory)
        for name in ["a", "b"] {
            let tensor = try XCTUnwrap(reader.tensor(name))
            let range = try reader.byteRange(of: tensor, elementOffset: 6, count: 12)
            XCTAssertEqual(range, (tensor.fileOffset + 6 * tensor.dtype.byteSize)..<(tensor.fileOffset + 18 * tensor.dtype.byteSize))
            XCTAssertTrue(tensor.byteRange.contains(range.lowerBound) && range.upperBound <= tensor.byteRange.upperBound)
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: range.count, alignment: 16)
            defer { bytes.deallocate() }
            try reader.readBytes(fileIndex: tensor.fileIndex, offset: range.lowerBound, count: range.count, into: bytes)
            var decoded = [Float](repeating: .nan, count: 12)
            DTypeConversion.decode(bytes, dtype: tensor.dtype, count: 12, into: &decoded)
            XCTAssertEqual(bits(decoded), bits(Array(try reader.floats(name)[6..<18])), name)
        }
    }

    func testReadingPastTheFileNamesIt() throws {
        let directory = try makeTemporaryDirectory()
        try writeCheckpoint(path: directory + "/model.safetensors", tensors: [("a", .f32, [2], [1, 2])])
        let reader = try CheckpointFormat.open(directory: directory)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { buffer.deallocate() }
        assertCheckpointError(mentioning: [directory + "/model.safetensors"]) { () throws(CheckpointError) in
            try reader.readBytes(fileIndex: 0, offset: 1 << 20, count: 4, into: buffer)
        }
        assertCheckpointError(mentioning: [directory, "no file #3"]) { () throws(CheckpointError) in
            try reader.readBytes(fileIndex: 3, offset: 0, count: 4, into: buffer)
        }
    }
}
