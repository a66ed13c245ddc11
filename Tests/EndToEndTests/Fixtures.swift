import Executor
import Foundation
import Parser
import Planner

/// Paths of the shipped conformance fixtures and helpers to run a case in-process.
enum Fixtures {
    static let conformance = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/conformance").path

    static func caseConfig(_ name: String) -> String { "cases/\(name)/config.yml" }
    static func expected(_ name: String) -> String { "\(conformance)/cases/\(name)/expected" }

    /// A fresh empty directory under the system temporary directory.
    static func temporaryDirectory(_ label: String) -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("mergegraph-\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Compiles and runs config text (model paths relative to the conformance folder) into `output`.
    static func merge(configText: String, file: String = "inline.yml", into output: String, threads: Int = 2,
                      seed: UInt64 = 0) throws {
        try inConformanceFolder {
            let plan = try Planner.compile(try ConfigParser.parse(text: configText, file: file), catalog: SafetensorsCatalog(),
                                           options: PlannerOptions(randomSeed: seed))
            var executor = PlanExecutor(plan: plan, catalog: SafetensorsCatalog(),
                                        options: ExecutionOptions(threads: threads, overwrite: true))
            try executor.run(outputDirectory: output)
        }
    }

    /// Compiles and runs a conformance case into `output`.
    static func merge(case name: String, into output: String, threads: Int = 2) throws {
        let text = try String(contentsOfFile: "\(conformance)/\(caseConfig(name))", encoding: .utf8)
        try merge(configText: text, file: caseConfig(name), into: output, threads: threads)
    }

    static func inConformanceFolder<T>(_ body: () throws -> T) throws -> T {
        let fm = FileManager.default
        let previous = fm.currentDirectoryPath
        fm.changeCurrentDirectoryPath(conformance)
        defer { fm.changeCurrentDirectoryPath(previous) }
        return try body()
    }
}

extension Fixtures {
    /// Compiles config text with the conformance folder as working directory.
    static func compile(_ configText: String, file: String = "chain.yml", options: PlannerOptions = PlannerOptions()) throws -> Plan {
        try inConformanceFolder {
            try Planner.compile(try ConfigParser.parse(text: configText, file: file), catalog: SafetensorsCatalog(), options: options)
        }
    }
}
