@testable import Executor
import Checkpoint
import Foundation
import IR
import XCTest

/// A shard's digest taken from its bytes as they are written equals the digest of the finished file, and is given up
/// (nil) when the pieces do not come in file order.
final class ShardDigestTests: XCTestCase {
    private let layout: [(name: String, dtype: DType, shape: [Int])] = [
        ("a", .bf16, [700_001]), ("b", .f32, [3, 300_007]), ("c", .f16, [5]),
    ]

    private func write(order: [Int], pieces: Int) throws -> (path: String, digest: ShardLedger.Entry?) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ShardDigestTests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/model.safetensors"
        let digest = ShardDigest()
        let writer = try SafetensorsWriter(path: path, tensors: layout, observer: digest)
        for t in order {
            let count = layout[t].shape.reduce(1, *)
            let values = (0..<count).map { Float(($0 * 7 + t) % 1000) * 0.001 - 0.5 }
            try values.withUnsafeBufferPointer { (all) throws(CheckpointError) in
                let step = max(1, (count + pieces - 1) / pieces)
                var at = 0
                while at < count {
                    let n = min(step, count - at)
                    try writer.write(layout[t].name, elementOffset: at, floats: UnsafeBufferPointer(rebasing: all[at..<at + n]))
                    at += n
                }
            }
        }
        try writer.finish()
        return (path, digest.entry)
    }

    func testTensorsInLayoutOrderGiveTheFilesDigest() throws {
        for pieces in [1, 3] {
            let (path, digest) = try write(order: [0, 1, 2], pieces: pieces)
            let expected = try ShardLedger.digest(of: path)
            XCTAssertEqual(digest, expected, "\(pieces) piece(s) per tensor")
            XCTAssertGreaterThan(expected.bytes, 4_000_000)
        }
    }

    func testTensorsOutOfOrderGiveNoDigest() throws {
        let (_, digest) = try write(order: [1, 0, 2], pieces: 2)
        XCTAssertNil(digest)
    }
}
