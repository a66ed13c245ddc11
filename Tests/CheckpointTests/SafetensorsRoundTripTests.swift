import Checkpoint
import Foundation
import IR
import XCTest

final class SafetensorsRoundTripTests: XCTestCase {
    private let layout: [(name: String, dtype: DType, shape: [Int], values: [Float])] = [
        ("weights.f32", .f32, [3, 5], sampleFloats(count: 15, seed: 1) + []),
        ("weights.f16", .f16, [4, 2, 3], sampleFloats(count: 24, seed: 2)),
        ("weights.bf16", .bf16, [7], sampleFloats(count: 7, seed: 3)),
        ("scalar", .bf16, [], [3.140625]),
        ("empty", .f16, [0, 4], []),
        ("special \"quoted\" name", .f32, [4], [.infinity, -.infinity, -0.0, .signalingNaN]),
    ]

    func testWrittenTensorsReadBackRoundedToTheirDType() throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/model.safetensors"
        let writer = try SafetensorsWriter(
            path: path, tensors: layout.map { ($0.name, $0.dtype, $0.shape) }, metadata: ["format": "pt", "note": "a \"b\""])
        for tensor in layout.reversed() {
            try tensor.values.withUnsafeBufferPointer { (buffer) throws(CheckpointError) in
                try writer.write(tensor.name, floats: buffer)
            }
        }
        try writer.finish()

        let model = try SafetensorsModel(directory: directory)
        XCTAssertEqual(model.fileCount, 1)
        XCTAssertEqual(model.filePaths, [path])
        XCTAssertEqual(model.fileMetadata, [["format": "pt", "note": "a \"b\""]])
        XCTAssertEqual(model.tensorNames, layout.map(\.name).sorted())
        for tensor in layout {
            let stored = try XCTUnwrap(model.tensor(tensor.name))
            XCTAssertEqual(stored.dtype, tensor.dtype)
            XCTAssertEqual(stored.shape, tensor.shape)
            XCTAssertEqual(stored.elementCount, tensor.values.count)
            XCTAssertEqual(stored.byteCount, tensor.values.count * tensor.dtype.byteSize)
            XCTAssertEqual(stored.fileOffset % tensor.dtype.byteSize, 0)
            let expected = tensor.values.map { DTypeConversion.round($0, to: tensor.dtype) }
            XCTAssertEqual(bits(try model.floats(tensor.name)), bits(expected), tensor.name)
        }
    }

    /// A tensor of no elements has no bytes to write: the file is complete without a write for it.
    func testEmptyTensorsNeedNoWrite() throws {
        let directory = try makeTemporaryDirectory()
        let writer = try SafetensorsWriter(path: directory + "/model.safetensors",
                                           tensors: [("empty", .bf16, [0, 16]), ("w", .f32, [2])])
        try [Float(1), 2].withUnsafeBufferPointer { (buffer) throws(CheckpointError) in try writer.write("w", floats: buffer) }
        try writer.finish()
        let model = try SafetensorsModel(directory: directory)
        XCTAssertEqual(try XCTUnwrap(model.tensor("empty")).shape, [0, 16])
        XCTAssertEqual(try model.floats("w"), [1, 2])
        // A tensor with elements still has to be written.
        let other = try makeTemporaryDirectory()
        let unfinished = try SafetensorsWriter(path: other + "/model.safetensors",
                                               tensors: [("empty", .bf16, [0, 16]), ("w", .f32, [2])])
        XCTAssertThrowsError(try unfinished.finish()) { error in
            XCTAssertEqual(error as? CheckpointError, .tensorNotWritten(path: other + "/model.safetensors", tensor: "w"))
        }
    }

    func testHeaderIsPaddedSoDataStartsEightByteAligned() throws {
        let directory = try makeTemporaryDirectory()
        for nameLength in 1...9 {
            let path = directory + "/t\(nameLength).safetensors"
            try writeCheckpoint(path: path, tensors: [(String(repeating: "x", count: nameLength), .f32, [1], [1])])
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            XCTAssertEqual((8 + headerLength) % 8, 0)
            XCTAssertEqual(bytes.count, 8 + headerLength + 4)
            let tensors = try SafetensorsModel.readHeader(path: path)
            XCTAssertEqual(tensors.map(\.fileOffset), [8 + headerLength])
        }
    }

    func testChunkedReadsEqualTheFullRead() throws {
        let directory = try makeTemporaryDirectory()
        let values = sampleFloats(count: 1000, seed: 9)
        try writeCheckpoint(path: directory + "/model.safetensors", tensors: [
            ("a", .bf16, [10, 100], values), ("b", .f16, [1000], values), ("c", .f32, [1000], values),
        ])
        let model = try SafetensorsModel(directory: directory)
        for name in ["a", "b", "c"] {
            let full = try model.floats(name)
            let tensor = try XCTUnwrap(model.tensor(name))
            var chunked: [Float] = []
            var offset = 0
            for count in [1, 0, 7, 256, 333, 403] {
                var chunk = [Float](repeating: .nan, count: count)
                try chunk.withUnsafeMutableBufferPointer { (buffer) throws(CheckpointError) in
                    guard let base = buffer.baseAddress else { return }
                    try model.readFloats(tensor, elementOffset: offset, count: count, into: base)
                }
                chunked += chunk
                offset += count
            }
            XCTAssertEqual(offset, 1000)
            XCTAssertEqual(bits(chunked), bits(full), name)
        }
    }

    func testReadsOutsideTheTensorAreRejected() throws {
        let directory = try makeTemporaryDirectory()
        try writeCheckpoint(path: directory + "/model.safetensors", tensors: [("a", .f32, [4], [1, 2, 3, 4])])
        let model = try SafetensorsModel(directory: directory)
        let tensor = try XCTUnwrap(model.tensor("a"))
        var destination = [Float](repeating: 0, count: 8)
        for (offset, count) in [(3, 2), (-1, 1), (0, 5), (5, 0), (0, -1)] {
            destination.withUnsafeMutableBufferPointer { buffer in
                assertCheckpointError(mentioning: ["a", directory + "/model.safetensors"]) { () throws(CheckpointError) in
                    try model.readFloats(tensor, elementOffset: offset, count: count, into: buffer.baseAddress!)
                }
            }
        }
        let foreign = StoredTensor(name: "z", dtype: .f32, shape: [1], fileIndex: 0, fileOffset: 0, byteCount: 4)
        destination.withUnsafeMutableBufferPointer { buffer in
            assertCheckpointError(mentioning: ["z", directory]) { () throws(CheckpointError) in
                try model.readFloats(foreign, elementOffset: 0, count: 1, into: buffer.baseAddress!)
            }
        }
    }

    func testWriterRejectsMisuse() throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/out.safetensors"
        assertCheckpointError(mentioning: ["a", path]) { () throws(CheckpointError) in
            _ = try SafetensorsWriter(path: path, tensors: [("a", .f32, [1]), ("a", .f16, [2])])
        }
        assertCheckpointError(mentioning: ["neg", path, "[2, -1]"]) { () throws(CheckpointError) in
            _ = try SafetensorsWriter(path: path, tensors: [("neg", .f32, [2, -1])])
        }
        assertCheckpointError(mentioning: [directory + "/missing/out.safetensors"]) { () throws(CheckpointError) in
            _ = try SafetensorsWriter(path: directory + "/missing/out.safetensors", tensors: [])
        }

        let writer = try SafetensorsWriter(path: path, tensors: [("a", .f32, [2]), ("b", .bf16, [3])])
        let two: [Float] = [1, 2]
        try two.withUnsafeBufferPointer { (buffer) throws(CheckpointError) in
            assertCheckpointError(mentioning: ["zzz", path]) { () throws(CheckpointError) in try writer.write("zzz", floats: buffer) }
            assertCheckpointError(mentioning: ["b", path, "3", "2"]) { () throws(CheckpointError) in try writer.write("b", floats: buffer) }
            try writer.write("a", floats: buffer)
            assertCheckpointError(mentioning: ["a", path, "already"]) { () throws(CheckpointError) in try writer.write("a", floats: buffer) }
        }
        assertCheckpointError(mentioning: ["b", path, "never written"]) { () throws(CheckpointError) in try writer.finish() }
        try [Float](repeating: 0.5, count: 3).withUnsafeBufferPointer { (buffer) throws(CheckpointError) in
            try writer.write("b", floats: buffer)
        }
        try writer.finish()
        assertCheckpointError(mentioning: [path]) { () throws(CheckpointError) in try writer.finish() }
        XCTAssertEqual(try SafetensorsModel.readHeader(path: path).map(\.name), ["a", "b"])
    }

    func testWriteErrorsNameTheFile() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("no /dev/full") }
        assertCheckpointError(mentioning: ["/dev/full", "No space left"]) { () throws(CheckpointError) in
            _ = try SafetensorsWriter(path: "/dev/full", tensors: [("a", .f32, [1])])
        }
    }

    func testLargeTensorsAreConvertedInChunks() throws {
        let directory = try makeTemporaryDirectory()
        let values = sampleFloats(count: 1_500_000, seed: 11)
        try writeCheckpoint(path: directory + "/model.safetensors", tensors: [("big", .bf16, [1500, 1000], values)])
        let model = try SafetensorsModel(directory: directory)
        XCTAssertEqual(bits(try model.floats("big")), bits(values.map { DTypeConversion.round($0, to: .bf16) }))
    }
}
