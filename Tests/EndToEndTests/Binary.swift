import Foundation

/// Runs the built `mergegraph` binary as a user would (from the conformance folder unless told otherwise): every
/// end-to-end test that runs the tool goes through it.
enum Binary {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `mergegraph` executable built beside the test bundle.
    static var binary: URL {
        let runner = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
        let candidates = [runner.deletingLastPathComponent()]
            + Bundle.allBundles.map(\.bundleURL).flatMap { [$0, $0.deletingLastPathComponent()] }
        return candidates.map { $0.appendingPathComponent("mergegraph") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? URL(fileURLWithPath: "mergegraph")
    }

    /// An empty Hugging Face cache for runs that do not name one, so that no test reads the user's.
    static let emptyHubCache = Fixtures.temporaryDirectory("empty-hub-cache")

    /// The environment of a run: this process's, offline (`HF_HUB_OFFLINE=1`, no test reaches the real Hub) with
    /// an empty Hugging Face cache, then `overrides` (a value of "" removes the variable).
    static func environment(_ overrides: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["HF_HUB_OFFLINE"] = "1"
        environment["HF_HUB_CACHE"] = emptyHubCache
        for (key, value) in overrides { environment[key] = value.isEmpty ? nil : value }
        return environment
    }

    /// Runs `arguments` in `directory` and waits; both output streams are collected. The environment is
    /// `environment(overrides)`. With `fileLimit`, the binary runs with at most that many open files
    /// (`ulimit -n` in a shell that then execs it); with `timeLimit`, it is stopped after that many seconds
    /// (coreutils' `timeout`: status 124), for runs a defect could leave waiting forever.
    static func run(_ arguments: [String], in directory: String = Fixtures.conformance,
                    environment overrides: [String: String] = [:], fileLimit: Int? = nil,
                    timeLimit: Int? = nil) throws -> Result {
        let process = Process()
        if fileLimit != nil || timeLimit != nil {
            // `ulimit -n` for a file-descriptor limit; coreutils' `timeout` (exit 124) for a run that could hang.
            let limit = fileLimit.map { "ulimit -n \($0) && " } ?? ""
            let timeout = timeLimit.map { "timeout \($0) " } ?? ""
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "\(limit)exec \(timeout)\"$0\" \"$@\"", binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        process.environment = environment(overrides)
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Standard error is drained on another thread, so that neither pipe can fill up and stall the child.
        let errors = DispatchGroup()
        nonisolated(unsafe) var stderr = Data()
        DispatchQueue.global().async(group: errors) { stderr = err.fileHandleForReading.readDataToEndOfFile() }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        errors.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// `Tests/Fixtures/legacy/NAME`, relative to the conformance folder.
    static func legacyFixture(_ name: String) -> String { "../legacy/\(name)" }
}
