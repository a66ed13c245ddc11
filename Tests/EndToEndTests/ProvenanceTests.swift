import Crypto
import Foundation
import XCTest

/// Every output shard's safetensors metadata records, besides `format: pt`, the mergegraph version and the SHA-256
/// of the config text, so any merged file can be traced to its recipe.
final class ProvenanceTests: XCTestCase {
    /// The `__metadata__` of the safetensors file at `path`.
    private func metadata(_ path: String) throws -> [String: String] {
        let data = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any]
        return try XCTUnwrap(header?["__metadata__"] as? [String: String])
    }

    func testEveryShardRecordsTheVersionAndTheConfigHash() throws {
        let out = Fixtures.temporaryDirectory("provenance")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let config = Fixtures.caseConfig("ties")
        let result = try Binary.run(["run", config, out, "--overwrite", "--out-shard-size", "50K", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let text = try String(contentsOfFile: "\(Fixtures.conformance)/\(config)", encoding: .utf8)
        let hash = SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
        let version = try Binary.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(version.isEmpty)
        let shards = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".safetensors") }
        XCTAssertGreaterThan(shards.count, 1)
        for shard in shards {
            XCTAssertEqual(try metadata("\(out)/\(shard)"),
                           ["format": "pt", "mergegraph_version": version, "mergegraph_config_sha256": hash], shard)
        }
    }
}
