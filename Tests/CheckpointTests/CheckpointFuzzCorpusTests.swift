@testable import Checkpoint
import Foundation
import XCTest

/// The seed corpora of `scripts/fuzz.sh safetensors|pickle|json` (`scripts/fuzz/corpus/TARGET`) through the fuzz
/// targets' own entry functions: none traps, the seeds from valid fixtures are still accepted (so the fuzzer starts
/// from inputs that reach the deepest checks), and those from rejected fixtures or past findings are still refused.
final class CheckpointFuzzCorpusTests: XCTestCase {
    /// `scripts/fuzz/corpus/TARGET`, found relative to this file.
    private func seeds(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/fuzz/corpus/" + target).path
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        XCTAssertFalse(names.isEmpty, "no seeds in \(directory)")
        return try names.map { ($0, [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + $0)))) }
    }

    /// Every seed is a valid file (the fixtures' small ones, and the conformance models' headers shrunk to match a
    /// few KB of data): accepted with its tensors.
    func testSafetensorsSeeds() throws {
        let scratch = try makeTemporaryDirectory()
        for (name, bytes) in try seeds("safetensors") {
            switch CheckpointFuzzTargets.safetensors(bytes, scratchDirectory: scratch) {
            case .tensors(let tensors): XCTAssertFalse(tensors.isEmpty, name)
            case .rejected(let message): XCTFail("\(name): \(message)")
            }
        }
    }

    /// Archives and bare pickles of valid fixtures give their tensors (a `data.pkl` the same ones as its archive);
    /// the rejected fixtures and the regression inputs (`regress-*`) are refused.
    func testPickleSeeds() throws {
        let scratch = try makeTemporaryDirectory()
        var accepted: [String: [StoredTensor]] = [:]
        for (name, bytes) in try seeds("pickle") {
            switch CheckpointFuzzTargets.pickle(bytes, scratchDirectory: scratch) {
            case .tensors(let tensors):
                XCTAssertFalse(name.contains("rejects") || name.hasPrefix("regress-"), "\(name) was accepted")
                XCTAssertFalse(tensors.isEmpty, name)
                accepted[name] = tensors
            case .rejected(let message):
                XCTAssertTrue(name.contains("rejects") || name.hasPrefix("regress-"), "\(name): \(message)")
            }
        }
        XCTAssertEqual(accepted["pytorch-dtypes.bin"]?.count, 18)
        for (name, tensors) in accepted where name.hasSuffix(".pkl") {
            guard let archive = accepted[String(name.dropLast(4)) + ".bin"] else { continue }
            XCTAssertEqual(tensors.map(\.name), archive.map(\.name), name)
            XCTAssertEqual(tensors.map(\.shape), archive.map(\.shape), name)
            XCTAssertEqual(tensors.map(\.dtype), archive.map(\.dtype), name)
            XCTAssertEqual(tensors.map(\.byteCount), archive.map(\.byteCount), name)
        }
    }

    /// Every seed is JSON, and its serialization parses to the same serialization.
    func testJSONSeeds() throws {
        for (name, bytes) in try seeds("json") {
            let text = try XCTUnwrap(CheckpointFuzzTargets.json(bytes), name)
            XCTAssertEqual(CheckpointFuzzTargets.json(Array(text.utf8)), text, name)
        }
    }
}
