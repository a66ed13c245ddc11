import Checkpoint
import Foundation
import IR
import XCTest

/// Headers the safetensors format forbids (the reference implementation's `validate`): tensors must tile the data
/// region in order of offsets, without gaps, overlap or trailing bytes; names are unique; a file that shrinks while
/// being read is named as such.
final class SafetensorsLayoutTests: XCTestCase {
    private var directory = ""
    private var path: String { directory + "/model.safetensors" }

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func assertOpeningFails(mentioning mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
        assertCheckpointError(mentioning: mentions, file: file, line: line) { () throws(CheckpointError) in
            _ = try SafetensorsModel(directory: directory)
        }
    }

    private func entry(_ name: String, _ begin: Int, _ end: Int) -> String {
        #""\#(name)": {"dtype": "U8", "shape": [\#(end - begin)], "data_offsets": [\#(begin), \#(end)]}"#
    }

    func testTensorsOutOfOrderButTilingAreAccepted() throws {
        try writeRawSafetensors(path: path, header: "{\(entry("b", 4, 8)), \(entry("a", 0, 4)), \(entry("empty", 8, 8))}",
                                data: Array(0..<8))
        let model = try SafetensorsModel(directory: directory)
        XCTAssertEqual(model.tensorNames, ["a", "b", "empty"])
    }

    func testAGapBetweenTensorsIsRefused() throws {
        try writeRawSafetensors(path: path, header: "{\(entry("a", 0, 4)), \(entry("b", 6, 8))}", data: Array(0..<8))
        assertOpeningFails(mentioning: ["tensor b in \(path) starts at byte 6", "tensor a ends at byte 4", "without gaps or overlap"])
    }

    func testOverlappingTensorsAreRefused() throws {
        try writeRawSafetensors(path: path, header: "{\(entry("a", 0, 6)), \(entry("b", 4, 8))}", data: Array(0..<8))
        assertOpeningFails(mentioning: ["tensor b in \(path) starts at byte 4", "tensor a ends at byte 6"])
        // Two names for the same bytes overlap too.
        try writeRawSafetensors(path: path, header: "{\(entry("a", 0, 4)), \(entry("b", 0, 4))}", data: Array(0..<4))
        assertOpeningFails(mentioning: ["tensor b in \(path) starts at byte 0", "tensor a ends at byte 4"])
    }

    func testDataThatDoesNotStartAtZeroIsRefused() throws {
        try writeRawSafetensors(path: path, header: "{\(entry("a", 2, 6))}", data: Array(0..<6))
        assertOpeningFails(mentioning: ["tensor a in \(path) starts at byte 2", "the data region starts at byte 0"])
    }

    func testTrailingBytesAreRefused() throws {
        try writeRawSafetensors(path: path, header: "{\(entry("a", 0, 4))}", data: Array(0..<6))
        assertOpeningFails(mentioning: [path, "tensors end at byte 4 of the data region, which is 6 bytes"])
    }

    func testANameTwiceInOneHeaderIsRefused() throws {
        try writeRawSafetensors(path: path, header: "{\(entry("a", 0, 4)), \(entry("a", 4, 8))}", data: Array(0..<8))
        assertOpeningFails(mentioning: ["tensor a is listed twice in the header of \(path)"])
        try writeRawSafetensors(path: path, header: #"{"__metadata__": {}, "__metadata__": {}}"#, data: [])
        assertOpeningFails(mentioning: ["tensor __metadata__ is listed twice"])
    }

    func testAFileThatShrinksWhileBeingReadIsNamed() throws {
        try writeRawSafetensors(path: path, header: "{\(entry("a", 0, 64))}", data: Array(repeating: 7, count: 64))
        let model = try SafetensorsModel(directory: directory)
        let tensor = try XCTUnwrap(model.tensor("a"))
        XCTAssertEqual(truncate(path, off_t(8 + "{\(entry("a", 0, 64))}".utf8.count + 10)), 0)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        assertCheckpointError(mentioning: [path, "ended at byte", "while being read", "the file changed"]) { () throws(CheckpointError) in
            try model.readBytes(fileIndex: 0, offset: tensor.fileOffset, count: 64, into: buffer)
        }
    }

    /// Found by `scripts/fuzz.sh json`: a high surrogate escape followed by a non-low one trapped on underflow.
    func testABrokenSurrogatePairIsAnErrorNotACrash() throws {
        for escape in [#"\uD999\u0041"#, #"\uD999\u+fce"#, #"\u+fce"#] {
            try writeRawSafetensors(path: path, header: #"{"a\#(escape)": 1}"#, data: [])
            assertOpeningFails(mentioning: [path, "not valid JSON"])
        }
    }
}
