import Foundation
import IR
import XCTest
import Checkpoint

/// The conformance fixtures, found relative to this source file (…/Tests/CheckpointTests → …/Tests/Fixtures/conformance).
let conformanceModelsDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .appendingPathComponent("Fixtures/conformance/models")
    .path

extension XCTestCase {
    /// A fresh empty directory, removed when the test ends.
    func makeTemporaryDirectory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("CheckpointTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// Asserts `body` throws a `CheckpointError` whose message contains every string in `mentions`.
    func assertCheckpointError(
        mentioning mentions: [String],
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () throws(CheckpointError) -> Void
    ) {
        do {
            try body()
        } catch {
            for mention in mentions {
                XCTAssertTrue(error.description.contains(mention), "\"\(error.description)\" does not mention \(mention)", file: file, line: line)
            }
            return
        }
        XCTFail("expected a CheckpointError mentioning \(mentions)", file: file, line: line)
    }
}

/// Writes a safetensors file byte by byte: the given header length (default: the header's), header text, then `data`.
func writeRawSafetensors(path: String, header: String, headerLength: UInt64? = nil, data: [UInt8]) throws {
    let headerBytes = Array(header.utf8)
    let length = headerLength ?? UInt64(headerBytes.count)
    let lengthBytes = withUnsafeBytes(of: length.littleEndian) { Array($0) }
    try Data(lengthBytes + headerBytes + data).write(to: URL(fileURLWithPath: path))
}

/// Writes a single-file checkpoint of f32 tensors with `SafetensorsWriter`.
func writeCheckpoint(path: String, tensors: [(name: String, dtype: DType, shape: [Int], values: [Float])]) throws {
    let writer = try SafetensorsWriter(path: path, tensors: tensors.map { ($0.name, $0.dtype, $0.shape) })
    for tensor in tensors {
        try tensor.values.withUnsafeBufferPointer { (buffer) throws(CheckpointError) in
            try writer.write(tensor.name, floats: buffer)
        }
    }
    try writer.finish()
}

extension CheckpointReader {
    /// Every element of `name` decoded to f32.
    func floats(_ name: String) throws -> [Float] {
        guard let tensor = tensor(name) else {
            XCTFail("no tensor \(name) in \(directory)")
            return []
        }
        var values = [Float](repeating: .nan, count: tensor.elementCount)
        try values.withUnsafeMutableBufferPointer { (buffer) throws(CheckpointError) in
            guard let base = buffer.baseAddress else { return }
            try readFloats(tensor, elementOffset: 0, count: tensor.elementCount, into: base)
        }
        return values
    }
}

/// Bit patterns of `values`, so NaNs and signed zeros compare exactly.
func bits(_ values: [Float]) -> [UInt32] {
    values.map(\.bitPattern)
}

/// Deterministic pseudo-random floats (xorshift), spread over several orders of magnitude.
func sampleFloats(count: Int, seed: UInt64) -> [Float] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let unit = Float(state >> 40) / Float(1 << 24) - 0.5
        return unit * Float(1 << Int(state % 9))
    }
}

extension CheckpointReader {
    /// Decodes elements `[elementOffset, elementOffset + count)` of `t` into `dst` through a temporary staging buffer.
    func readFloats(_ t: StoredTensor, elementOffset: Int, count: Int,
                    into dst: UnsafeMutablePointer<Float>) throws(CheckpointError) {
        let staging = UnsafeMutableRawPointer.allocate(byteCount: max(1, count * t.dtype.byteSize), alignment: 16)
        defer { staging.deallocate() }
        try readFloats(t, elementOffset: elementOffset, count: count, staging: staging, into: dst)
    }
}
