import Checkpoint
import Foundation
import IR
import XCTest

/// Format detection per model directory, and the errors for directories mergegraph cannot read.
final class CheckpointFormatTests: XCTestCase {
    private func touch(_ path: String, _ text: String = "x") throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func testSingleFileShardedAndLooseSafetensorsAreDetected() throws {
        let single = try makeTemporaryDirectory()
        try writeCheckpoint(path: single + "/model.safetensors", tensors: [("a", .f32, [1], [1])])
        let sharded = try makeTemporaryDirectory()
        try writeCheckpoint(path: sharded + "/model-00001-of-00001.safetensors", tensors: [("a", .f32, [1], [1])])
        try SafetensorsWriter.writeIndex(directory: sharded, weightMap: ["a": "model-00001-of-00001.safetensors"], totalSize: 4)
        let loose = try makeTemporaryDirectory()
        try writeCheckpoint(path: loose + "/weights.safetensors", tensors: [("a", .f32, [1], [1])])
        for directory in [single, sharded, loose] {
            XCTAssertEqual(try CheckpointFormat.detect(directory: directory), .safetensors, directory)
            let reader = try CheckpointFormat.open(directory: directory)
            XCTAssertTrue(reader is SafetensorsModel)
            XCTAssertEqual(reader.directory, directory)
            XCTAssertEqual(reader.tensorNames, ["a"])
            XCTAssertEqual(try reader.floats("a"), [1])
        }
    }

    func testPytorchBinIsDetectedAndSafetensorsPreferred() throws {
        let binOnly = try makeTemporaryDirectory()
        try touch(binOnly + "/config.json", "{}")
        try touch(binOnly + "/pytorch_model.bin")
        XCTAssertEqual(try CheckpointFormat.detect(directory: binOnly), .pytorchBin)
        // An unreadable .bin is an error naming the file, not a format mergegraph "does not read".
        assertCheckpointError(mentioning: [binOnly + "/pytorch_model.bin"]) { () throws(CheckpointError) in
            _ = try CheckpointFormat.open(directory: binOnly)
        }
        let sharded = try makeTemporaryDirectory()
        try touch(sharded + "/pytorch_model.bin.index.json", "{}")
        XCTAssertEqual(try CheckpointFormat.detect(directory: sharded), .pytorchBin)
        let both = try makeTemporaryDirectory()
        try writeCheckpoint(path: both + "/model.safetensors", tensors: [("a", .f32, [1], [1])])
        try touch(both + "/pytorch_model.bin")
        XCTAssertEqual(try CheckpointFormat.detect(directory: both), .safetensors)
        XCTAssertTrue(try CheckpointFormat.open(directory: both) is SafetensorsModel)
    }

    func testOtherWeightFilesAreNamed() throws {
        let directory = try makeTemporaryDirectory()
        for name in ["model.gguf", "training_args.bin", "tokenizer.json"] {
            try touch(directory + "/" + name)
        }
        XCTAssertThrowsError(try CheckpointFormat.detect(directory: directory)) { error in
            XCTAssertEqual(error as? CheckpointError, .unsupportedFormat(directory: directory, files: [
                "model.gguf", "training_args.bin",
            ]))
            XCTAssertEqual(String(describing: error),
                           "\(directory) has no checkpoint mergegraph reads (expected model.safetensors.index.json, "
                           + "model.safetensors, *.safetensors, pytorch_model.bin.index.json or pytorch_model.bin): it has "
                           + "model.gguf, training_args.bin, which mergegraph does not read")
        }
    }

    func testDirectoryWithoutWeightsListsWhatItHas() throws {
        let directory = try makeTemporaryDirectory()
        XCTAssertThrowsError(try CheckpointFormat.detect(directory: directory)) { error in
            XCTAssertEqual(error as? CheckpointError, .noCheckpoint(directory: directory, entries: []))
            XCTAssertTrue(String(describing: error).hasSuffix("it is empty"), String(describing: error))
        }
        for i in 0..<10 { try touch(directory + "/file\(i).txt") }
        XCTAssertThrowsError(try CheckpointFormat.detect(directory: directory)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .noCheckpoint(directory: directory, entries: (0..<8).map { "file\($0).txt" } + ["…"]))
        }
    }

    func testMissingDirectoryAndPlainFile() throws {
        let directory = try makeTemporaryDirectory()
        XCTAssertThrowsError(try CheckpointFormat.detect(directory: directory + "/nope")) { error in
            XCTAssertEqual(error as? CheckpointError, .directoryNotFound(path: directory + "/nope"))
        }
        try touch(directory + "/file")
        XCTAssertThrowsError(try CheckpointFormat.open(directory: directory + "/file")) { error in
            XCTAssertEqual(error as? CheckpointError, .directoryNotFound(path: directory + "/file"))
        }
    }
}
