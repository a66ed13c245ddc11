import Checkpoint
import Foundation
import IR
import XCTest

/// The file-system catalog: directories answered, each checkpoint opened once, metadata for the planner.
final class LocalCheckpointCatalogTests: XCTestCase {
    func testDescribesTheCheckpointAndOpensItOnce() throws {
        let directory = try makeTemporaryDirectory()
        try writeCheckpoint(path: directory + "/model.safetensors", tensors: [
            ("b", .f16, [2, 3], sampleFloats(count: 6, seed: 1)), ("a", .bf16, [4], sampleFloats(count: 4, seed: 2)),
        ])
        try Data(#"{"num_hidden_layers": 2}"#.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        try FileManager.default.createSymbolicLink(atPath: directory + "/link", withDestinationPath: directory)

        let catalog = LocalCheckpointCatalog()
        XCTAssertTrue(catalog.hasCheckpointDirectory(at: directory))
        XCTAssertTrue(catalog.hasCheckpointDirectory(at: directory + "/link"))
        XCTAssertFalse(catalog.hasCheckpointDirectory(at: directory + "/model.safetensors"))
        XCTAssertFalse(catalog.hasCheckpointDirectory(at: directory + "/missing"))

        let info = try catalog.checkpoint(at: directory + "/link")
        let resolved = URL(fileURLWithPath: directory).resolvingSymlinksInPath().standardizedFileURL.path
        XCTAssertEqual(info.resolvedPath, resolved)
        XCTAssertEqual(info.tensorNames, ["a", "b"])
        XCTAssertEqual(info.tensors["b"]?.type, TensorType(dtype: .f16, shape: [2, 3]))
        XCTAssertEqual(info.configJSON, Array(#"{"num_hidden_layers": 2}"#.utf8))
        XCTAssertEqual(try catalog.checkpoint(at: directory).resolvedPath, resolved)
        XCTAssertTrue(try catalog.reader(at: resolved) === catalog.reader(at: resolved), "each directory is opened once")
    }

    /// A model folder without `config.json` is refused, naming the folder and the file (mergekit 0.1.5 loads every
    /// model's config and stops without it); the weights alone are no model.
    func testAModelFolderWithoutConfigJSONIsAnError() throws {
        let directory = try makeTemporaryDirectory()
        try writeCheckpoint(path: directory + "/model.safetensors", tensors: [("a", .f32, [2], sampleFloats(count: 2, seed: 1))])
        XCTAssertThrowsError(try LocalCheckpointCatalog().checkpoint(at: directory)) { error in
            let resolved = URL(fileURLWithPath: directory).resolvingSymlinksInPath().standardizedFileURL.path
            XCTAssertTrue(String(describing: error).contains("\(resolved) has no config.json"), "\(error)")
        }
        try Data("{}".utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        XCTAssertEqual(try LocalCheckpointCatalog().checkpoint(at: directory).configJSON, Array("{}".utf8))
    }

    func testErrorsNameTheDirectory() throws {
        let directory = try makeTemporaryDirectory()
        try Data().write(to: URL(fileURLWithPath: directory + "/model.gguf"))
        XCTAssertThrowsError(try LocalCheckpointCatalog().checkpoint(at: directory)) { error in
            XCTAssertTrue(String(describing: error).contains("model.gguf, which mergegraph does not read"))
            XCTAssertTrue(String(describing: error).contains(directory))
        }
    }

    /// A model path naming a file (a checkpoint's config.json) says so and names the folder meant.
    func testAFileIsNotTakenForAMissingFolder() throws {
        let directory = try makeTemporaryDirectory()
        try Data("{}".utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        let error = CheckpointError.missingModel(path: directory + "/config.json", remote: "not found")
        guard case .modelIsFile = error else { return XCTFail("\(error)") }
        XCTAssertTrue(String(describing: error).contains("is a file; a model is the folder holding config.json and "
                                                         + "the weights ('\(directory)'?)"), "\(error)")
        XCTAssertTrue(String(describing: CheckpointError.missingModel(path: directory + "/missing", remote: nil))
            .contains("no such directory"))
    }

    /// A missing model's message recalls that paths are relative to the working directory only for a relative path.
    func testTheWorkingDirectoryIsMentionedOnlyForARelativePath() {
        let absolute = String(describing: CheckpointError.noSuchModel(path: "/models/missing", remote: nil))
        XCTAssertTrue(absolute.contains("no such directory"), absolute)
        XCTAssertFalse(absolute.contains("working directory"), absolute)
        let relative = String(describing: CheckpointError.noSuchModel(path: "models/missing", remote: "not found"))
        XCTAssertTrue(relative.contains("no such directory (paths are relative to the working directory), and as a "
                                        + "Hugging Face repo id: not found"), relative)
    }
}
