import Foundation
@testable import Parser
import XCTest

/// The seed corpus of `scripts/fuzz.sh config` (`scripts/fuzz/corpus/config`) through the fuzz target's own entry
/// function: the seeds still parse, so the fuzzer starts from valid configs, the probes of the parser's limits
/// (`regress-*`) are still refused, and none of them traps.
final class ConfigFuzzCorpusTests: XCTestCase {
    /// `scripts/fuzz/corpus/config`, found relative to this file.
    private let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/fuzz/corpus/config").path

    /// Every seed but the limit probes (`regress-*`, refused) is a mergekit or a bakllama config.
    func testEverySeedIsAMergekitOrBakllamaConfig() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: corpus).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 30, "the corpus holds the conformance and legacy configs")
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: corpus + "/" + name)))
            let outcome = ConfigFuzzTarget.run(bytes)
            if name.hasPrefix("regress-") {
                XCTAssertTrue(outcome.config == nil && outcome.bakllama == nil, "\(name) was accepted")
                XCTAssertTrue(outcome.messages.allSatisfy { $0.contains("more than") }, "\(name): \(outcome.messages)")
                continue
            }
            XCTAssertTrue(outcome.config != nil || outcome.bakllama != nil, "\(name): \(outcome.messages)")
            if name.hasPrefix("legacy-bakllama_default") || name.hasPrefix("legacy-bakllama_explicit.yml") {
                XCTAssertNotNil(outcome.bakllama, name)
            }
        }
    }

    /// Bytes that are not UTF-8 are refused as `FileText.read` refuses such a file, before libyaml sees them.
    func testInvalidUTF8IsRefusedLikeAFile() {
        let outcome = ConfigFuzzTarget.run(Array("merge_method: linear\nmodels: [".utf8) + [0xFF, 0xFE])
        XCTAssertNil(outcome.config)
        XCTAssertEqual(outcome.messages, ["fuzz.yml: not valid UTF-8 text"])
    }
}
