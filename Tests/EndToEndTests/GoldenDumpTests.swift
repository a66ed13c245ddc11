import Foundation
import XCTest

/// `--dump-ir` texts of a few configs, snapshot-tested: a change to lowering, passes, scheduling or the printer
/// shows up here as a diff to review. `UPDATE_GOLDEN=1 swift test --filter GoldenDumpTests` rewrites them.
/// The README's dump excerpts are checked against the same snapshots, so they cannot go stale.
final class GoldenDumpTests: XCTestCase {
    static let cases = ["linear", "ties", "ties_then_slerp", "rw_lora"]
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md").path

    /// The dump of case `name` as `mergegraph plan cases/NAME/config.yml` prints it (default options, one
    /// thread, no budget), with the fixture folder written as `/…`.
    static func dump(_ name: String) throws -> String {
        let text = try String(contentsOfFile: "\(Fixtures.conformance)/\(Fixtures.caseConfig(name))", encoding: .utf8)
        let plan = try Fixtures.compile(text, file: Fixtures.caseConfig(name))
        let root = URL(fileURLWithPath: Fixtures.conformance).resolvingSymlinksInPath().path
        return plan.dump().replacingOccurrences(of: root, with: "/…")
    }

    func testDumpsMatchTheirSnapshots() throws {
        for name in Self.cases {
            let actual = try Self.dump(name)
            let path = "\(Self.golden)/\(name).ir"
            if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] != nil {
                try actual.write(toFile: path, atomically: true, encoding: .utf8)
            }
            let expected = try String(contentsOfFile: path, encoding: .utf8)
            XCTAssertEqual(actual, expected, "\(name): --dump-ir changed; review, then UPDATE_GOLDEN=1 to accept")
        }
    }

    /// Every line of a README block introduced by "`mergegraph plan cases/NAME/config.yml` (excerpt)" appears in
    /// NAME's snapshot, in order (lines of `…` or `...` stand for what was left out).
    func testReadmeExcerptsComeFromTheSnapshots() throws {
        let lines = try String(contentsOfFile: Self.readme, encoding: .utf8).components(separatedBy: "\n")
        var checked = 0
        for (i, line) in lines.enumerated() {
            guard let name = Self.cases.first(where: { line.contains("`mergegraph plan cases/\($0)/config.yml` (excerpt)") }),
                  let open = lines[(i + 1)...].firstIndex(where: { $0.hasPrefix("```") }),
                  let close = lines[(open + 1)...].firstIndex(where: { $0.hasPrefix("```") }) else { continue }
            let snapshot = try String(contentsOfFile: "\(Self.golden)/\(name).ir", encoding: .utf8)
                .components(separatedBy: "\n")
            var cursor = 0
            for excerpt in lines[(open + 1)..<close] where !["…", "...", "  ..."].contains(excerpt) {
                guard let found = snapshot[cursor...].firstIndex(of: excerpt) else {
                    XCTFail("README line \(i + 1)'s excerpt of \(name) has a line not in its snapshot (in order): \(excerpt)")
                    break
                }
                cursor = found + 1
            }
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 3, "the README shows excerpts of the linear, ties_then_slerp and rw_lora dumps")
    }
}
