import Foundation
import XCTest

/// The subset of JSON Schema (2020-12) that `schemas/plan.schema.json` uses: `type` (one or a list), `enum`,
/// `required`, `properties`, `additionalProperties: false`, `items`, `pattern`, `minimum`, and `$ref` to `#/$defs/…`.
/// Any other keyword in the schema is reported, so the schema cannot silently outgrow the check.
struct SchemaValidator {
    let root: [String: Any]
    static let known: Set<String> = ["$schema", "$id", "title", "description", "type", "enum", "required", "properties",
                                     "additionalProperties", "items", "pattern", "minimum", "$ref", "$defs"]

    /// Problems of `value` against `schema`, each with its JSON path.
    func problems(_ value: Any, _ schema: [String: Any], at path: String = "$") -> [String] {
        var found = Set(schema.keys).subtracting(Self.known).map { "\(path): schema keyword '\($0)' is not checked" }
        if let ref = schema["$ref"] as? String {
            let name = ref.replacingOccurrences(of: "#/$defs/", with: "")
            guard let defs = root["$defs"] as? [String: Any], let target = defs[name] as? [String: Any] else {
                return ["\(path): unresolved $ref \(ref)"]
            }
            return problems(value, target, at: path)
        }
        if let type = schema["type"] {
            let types = (type as? [String]) ?? [type as? String ?? "?"]
            if !types.contains(where: { Self.matches(value, $0) }) { return found + ["\(path): expected \(types), found \(value)"] }
        }
        if let allowed = schema["enum"] as? [Any], !allowed.contains(where: { Self.equal($0, value) }) {
            found.append("\(path): \(value) is not one of \(allowed)")
        }
        if let pattern = schema["pattern"] as? String, let text = value as? String,
           text.range(of: pattern, options: .regularExpression) == nil {
            found.append("\(path): '\(text)' does not match \(pattern)")
        }
        if let minimum = schema["minimum"] as? NSNumber, let number = value as? NSNumber, !(value is NSNull),
           number.doubleValue < minimum.doubleValue {
            found.append("\(path): \(number) is below the minimum \(minimum)")
        }
        if let object = value as? [String: Any] {
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                found.append("\(path): missing required '\(key)'")
            }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for (key, member) in object {
                if let sub = properties[key] as? [String: Any] {
                    found += problems(member, sub, at: "\(path).\(key)")
                } else if (schema["additionalProperties"] as? Bool) == false {
                    found.append("\(path): unexpected property '\(key)'")
                }
            }
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (i, item) in array.enumerated() { found += problems(item, items, at: "\(path)[\(i)]") }
        }
        return found
    }

    static func matches(_ value: Any, _ type: String) -> Bool {
        switch type {
        case "null": return value is NSNull
        case "object": return value is [String: Any]
        case "array": return value is [Any]
        case "string": return value is String
        case "integer":
            guard let n = value as? NSNumber else { return false }
            return n.doubleValue == n.doubleValue.rounded()
        case "number": return value is NSNumber
        default: return false  // "boolean" is not used by the schema (JSONSerialization does not tell it from 0/1)
        }
    }

    static func equal(_ a: Any, _ b: Any) -> Bool {
        if let a = a as? String, let b = b as? String { return a == b }
        if let a = a as? NSNumber, let b = b as? NSNumber { return a == b }
        return false
    }
}

/// `plan --format json` against `schemas/plan.schema.json`, and `--format dot` rendered by Graphviz when installed.
final class PlanFormatTests: XCTestCase {
    static let schemaPath = URL(fileURLWithPath: Fixtures.conformance).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schemas/plan.schema.json").path

    func json(_ arguments: [String]) throws -> [String: Any] {
        let result = try Binary.run(arguments)
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    func schema() throws -> SchemaValidator {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.schemaPath))
        return SchemaValidator(root: try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any]))
    }

    func testJSONFollowsTheSchemaForEveryConformanceCase() throws {
        let validator = try schema()
        for name in ["linear", "ties", "ties_then_slerp", "passthrough_frankenmerge", "linear_unnormalized_sharded", "rw_bool_buffers"] {
            let document = try json(["plan", Fixtures.caseConfig(name), "--format", "json"])
            XCTAssertEqual(validator.problems(document, validator.root), [], name)
        }
        // The bakllama and legacy plans are plans like any other.
        let bakllama = try json(["bakllama", Binary.legacyFixture("bakllama_explicit.yml"), "--plan-only", "--format", "json"])
        XCTAssertEqual(validator.problems(bakllama, validator.root), [])
    }

    func testTheValidatorRejectsWhatTheSchemaForbids() throws {
        let validator = try schema()
        let good = try json(["plan", Fixtures.caseConfig("linear"), "--format", "json"])
        var missing = good
        missing["nodes"] = nil
        XCTAssertEqual(validator.problems(missing, validator.root), ["$: missing required 'nodes'"])
        var badNode = good
        var nodes = try XCTUnwrap(good["nodes"] as? [[String: Any]])
        nodes[0]["id"] = "v0"
        nodes[1]["group"] = -1
        nodes[2]["extra"] = true
        badNode["nodes"] = nodes
        XCTAssertEqual(Set(validator.problems(badNode, validator.root)), [
            "$.nodes[0].id: 'v0' does not match ^%[0-9]+$", "$.nodes[1].group: -1 is below the minimum 0",
            "$.nodes[2]: unexpected property 'extra'",
        ])
    }

    /// The JSON says what `--dump-ir` says: the same nodes, operands that exist, the summary and the peak.
    func testJSONAgreesWithTheIR() throws {
        let document = try json(["plan", Fixtures.caseConfig("ties_then_slerp"), "--format", "json"])
        let text = try Binary.run(["plan", Fixtures.caseConfig("ties_then_slerp")]).stdout
        let nodes = try XCTUnwrap(document["nodes"] as? [[String: Any]])
        let summary = try XCTUnwrap(document["summary"] as? [String: Any])
        XCTAssertEqual(nodes.count, summary["nodes"] as? Int)
        XCTAssertTrue(text.contains("// summary: \(nodes.count) nodes"), text)
        let ids = Set(nodes.compactMap { $0["id"] as? String })
        for node in nodes { for operand in node["operands"] as? [String] ?? [] { XCTAssertTrue(ids.contains(operand)) } }
        let shared = nodes.filter { ($0["stages"] as? [String])?.count ?? 0 > 1 }
        XCTAssertTrue(shared.contains { $0["op"] as? String == "sub" }, "ft-b's task vector is shared by both TIES stages")
        let stages = try XCTUnwrap(document["stages"] as? [[String: Any]])
        XCTAssertEqual(stages.map { "\($0["name"]!) (\($0["method"]!))" }, ["ties-ab (ties)", "ties-bc (ties)", "<final> (slerp)"])
        let slerp = try XCTUnwrap(nodes.first { $0["op"] as? String == "slerp" })
        XCTAssertEqual((slerp["attributes"] as? [String: Any])?["t"] as? Double, 0.5)
        let memory = try XCTUnwrap(document["memory"] as? [String: Any])
        let peak = try XCTUnwrap(memory["predicted_peak_bytes"] as? Int)
        let groups = try XCTUnwrap((document["schedule"] as? [String: Any])?["groups"] as? [[String: Any]])
        let schedule = try XCTUnwrap(document["schedule"] as? [String: Any])
        let window = try XCTUnwrap(schedule["lane_window_bytes"] as? Int)
        XCTAssertEqual(max(groups.compactMap { $0["peak_bytes"] as? Int }.max()!, window), peak)
        XCTAssertEqual(groups.count, 39)
        // The binary runs groups on as many lanes as threads, but for `lm_head` (followed by a norm weight alone, and
        // more than twice the size of the group before it: `Scheduler.endsAlone`); with one thread, one at a time.
        XCTAssertEqual(schedule["lanes"] as? Int, ProcessInfo.processInfo.activeProcessorCount)
        let runs = groups.compactMap { $0["runs"] as? String }
        let lmHead = try XCTUnwrap(groups.firstIndex { $0["outputs"] as? [String] == ["lm_head.weight"] })
        XCTAssertEqual(runs, (0..<39).map { $0 == lmHead && ProcessInfo.processInfo.activeProcessorCount > 1 ? "alone" : "lane" })
        let one = try json(["plan", Fixtures.caseConfig("ties_then_slerp"), "--format", "json", "--threads", "1"])
        let oneSchedule = try XCTUnwrap(one["schedule"] as? [String: Any])
        XCTAssertEqual(oneSchedule["lanes"] as? Int, 1)
        XCTAssertEqual(oneSchedule["lane_window_bytes"] as? Int, 0)
    }

    func testDOTRendersWithGraphviz() throws {
        let dot = ["/usr/bin/dot", "/usr/local/bin/dot", "/opt/homebrew/bin/dot"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let result = try Binary.run(["plan", Fixtures.caseConfig("ties_then_slerp"), "--format", "dot"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout.components(separatedBy: "subgraph cluster_g").count - 1, 39, "one cluster per output group")
        XCTAssertTrue(result.stdout.contains("\"%5\" [label=\"%5 sub"), "the shared task vector")
        XCTAssertTrue(result.stdout.contains("tooltip=\"used by ties-ab, ties-bc\""))
        guard let dot else { throw XCTSkip("Graphviz `dot` is not installed (apt-get install graphviz): DOT not rendered") }
        let dir = Fixtures.temporaryDirectory("dot")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try result.stdout.write(toFile: "\(dir)/plan.dot", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dot)
        process.arguments = ["-Tsvg", "\(dir)/plan.dot", "-o", "\(dir)/plan.svg"]
        let err = Pipe()
        process.standardError = err
        try process.run()
        let messages = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, messages)
        XCTAssertEqual(messages, "", "dot reported problems")
        let svg = try String(contentsOfFile: "\(dir)/plan.svg", encoding: .utf8)
        XCTAssertTrue(svg.contains("slerp(t=0.5)"))
        XCTAssertEqual(svg.components(separatedBy: "class=\"cluster\"").count - 1, 39 + 1, "39 groups and the stage legend")
    }

    func testTensorSelectsOneGroupAndTextRefusesIt() throws {
        let one = try json(["plan", Fixtures.caseConfig("ties_then_slerp"), "--format", "json", "--tensor", "model.norm.weight"])
        let groups = try XCTUnwrap((one["schedule"] as? [String: Any])?["groups"] as? [[String: Any]])
        XCTAssertEqual(groups.map { $0["outputs"] as? [String] ?? [] }, [["model.norm.weight"]])
        let unknown = try Binary.run(["plan", Fixtures.caseConfig("linear"), "--format", "dot", "--tensor", "nope"])
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.stderr.contains("error: --tensor: the plan writes no tensor named 'nope'"), unknown.stderr)
        XCTAssertFalse(unknown.stderr.contains("Usage:"), "a tensor the plan lacks is no usage error: \(unknown.stderr)")
        XCTAssertEqual(unknown.stdout, "", "nothing of the plan is printed")
        // Refused before compiling, with plan's own usage (not the top-level `mergegraph <subcommand>`).
        let text = try Binary.run(["plan", Fixtures.caseConfig("linear"), "--tensor", "model.norm.weight"])
        XCTAssertEqual(text.status, 64)
        XCTAssertTrue(text.stderr.contains("--tensor: only with --format json or dot"), text.stderr)
        XCTAssertTrue(text.stderr.contains("Usage: mergegraph plan"), text.stderr)
        XCTAssertEqual(text.stdout, "")
    }
}
