import Checkpoint
import Foundation
import IR
import XCTest

final class SafetensorsCorruptionTests: XCTestCase {
    private var directory = ""
    private var path: String { directory + "/model.safetensors" }

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    private func assertOpeningFails(mentioning mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
        assertCheckpointError(mentioning: mentions, file: file, line: line) { () throws(CheckpointError) in
            _ = try SafetensorsModel(directory: directory)
        }
    }

    func testFileShorterThanTheHeaderLength() throws {
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        assertOpeningFails(mentioning: [path, "3 bytes"])
    }

    func testHeaderLengthPastEndOfFile() throws {
        try writeRawSafetensors(path: path, header: "{}", headerLength: 4096, data: [])
        assertOpeningFails(mentioning: [path, "4096", "past the end"])
    }

    func testRandomBytesAreNotASafetensorsFile() throws {
        try Data("this is certainly not a safetensors checkpoint".utf8).write(to: URL(fileURLWithPath: path))
        assertOpeningFails(mentioning: [path, "not a safetensors file"])
    }

    func testHeaderThatIsNotJSON() throws {
        try writeRawSafetensors(path: path, header: "{\"a\": [1, 2", data: [])
        assertOpeningFails(mentioning: [path, "not valid JSON"])
    }

    func testHeaderThatIsNotAnObject() throws {
        try writeRawSafetensors(path: path, header: "[1, 2, 3]", data: [])
        assertOpeningFails(mentioning: [path, "not a JSON object"])
    }

    func testUnsupportedDTypes() throws {
        for dtype in ["U16", "F8_E8M0"] {
            try writeRawSafetensors(
                path: path, header: #"{"w.weight": {"dtype": "\#(dtype)", "shape": [2], "data_offsets": [0, 16]}}"#,
                data: Array(repeating: 0, count: 16))
            assertOpeningFails(mentioning: ["tensor w.weight in \(path) has unsupported dtype \(dtype) (supported: F32, F16, BF16, F64, "
                                                + "F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL)"])
        }
    }

    func testDataOffsetsBeyondTheEndOfATruncatedFile() throws {
        try writeRawSafetensors(
            path: path, header: #"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#,
            data: Array(repeating: 0, count: 10))
        assertOpeningFails(mentioning: ["w", path, "[0, 16]", "10-byte"])
    }

    func testDataOffsetsThatDoNotMatchTheShape() throws {
        try writeRawSafetensors(
            path: path, header: #"{"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}}"#,
            data: Array(repeating: 0, count: 16))
        assertOpeningFails(mentioning: ["w", path, "8 bytes", "need 12 bytes"])
    }

    func testNegativeShape() throws {
        try writeRawSafetensors(
            path: path, header: #"{"w": {"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 16]}}"#,
            data: Array(repeating: 0, count: 16))
        assertOpeningFails(mentioning: ["w", path, "[2, -2]"])
    }

    func testMalformedTensorEntry() throws {
        try writeRawSafetensors(path: path, header: #"{"w": {"dtype": "F32", "shape": [1]}}"#, data: [0, 0, 0, 0])
        assertOpeningFails(mentioning: ["w", path, "data_offsets"])
    }

    func testIndexNamingAMissingShard() throws {
        try writeCheckpoint(path: directory + "/a.safetensors", tensors: [("x", .f32, [1], [1])])
        try SafetensorsWriter.writeIndex(directory: directory, weightMap: ["x": "a.safetensors", "y": "b.safetensors"], totalSize: 8)
        assertOpeningFails(mentioning: [directory + "/model.safetensors.index.json", "b.safetensors", "y"])
    }

    func testIndexThatIsNotJSON() throws {
        try Data("{ nope".utf8).write(to: URL(fileURLWithPath: directory + "/model.safetensors.index.json"))
        assertOpeningFails(mentioning: [directory + "/model.safetensors.index.json"])
    }

    func testIndexPlacingATensorInTheWrongShard() throws {
        try writeCheckpoint(path: directory + "/a.safetensors", tensors: [("x", .f32, [1], [1])])
        try writeCheckpoint(path: directory + "/b.safetensors", tensors: [("y", .f32, [1], [1])])
        try SafetensorsWriter.writeIndex(directory: directory, weightMap: ["x": "b.safetensors", "y": "a.safetensors"], totalSize: 8)
        assertOpeningFails(mentioning: ["model.safetensors.index.json", "x", "b.safetensors", "a.safetensors"])
    }

    func testIndexListingATensorNoShardHas() throws {
        try writeCheckpoint(path: directory + "/a.safetensors", tensors: [("x", .f32, [1], [1])])
        try SafetensorsWriter.writeIndex(directory: directory, weightMap: ["x": "a.safetensors", "ghost": "a.safetensors"], totalSize: 8)
        assertOpeningFails(mentioning: ["model.safetensors.index.json", "ghost", "a.safetensors"])
    }

    func testShardTensorMissingFromTheIndex() throws {
        try writeCheckpoint(path: directory + "/a.safetensors", tensors: [("x", .f32, [1], [1]), ("extra", .f32, [1], [2])])
        try SafetensorsWriter.writeIndex(directory: directory, weightMap: ["x": "a.safetensors"], totalSize: 4)
        assertOpeningFails(mentioning: ["model.safetensors.index.json", "extra", "missing from weight_map"])
    }

    func testDuplicateTensorAcrossShards() throws {
        try writeCheckpoint(path: directory + "/a.safetensors", tensors: [("x", .f32, [1], [1])])
        try writeCheckpoint(path: directory + "/b.safetensors", tensors: [("x", .f32, [1], [2])])
        assertOpeningFails(mentioning: ["x", directory + "/a.safetensors", directory + "/b.safetensors"])
    }

    func testDirectoryWithoutSafetensorsFiles() throws {
        try Data("{}".utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        assertOpeningFails(mentioning: [directory, "has no checkpoint", "model.safetensors", "it has only config.json"])
    }

    func testMissingDirectory() {
        let missing = directory + "/does-not-exist"
        assertCheckpointError(mentioning: [missing]) { () throws(CheckpointError) in
            _ = try SafetensorsModel(directory: missing)
        }
    }

    func testReadHeaderOfAMissingFile() {
        assertCheckpointError(mentioning: [path, "does not exist"]) { () throws(CheckpointError) in
            _ = try SafetensorsModel.readHeader(path: path)
        }
    }
}
