import Foundation
import XCTest

/// `Tests/Fixtures/hub/hub_server.py` running on 127.0.0.1 for one test: a stand-in for the Hugging Face Hub serving
/// fixture models as repos, logging every request (method, path, range, status, body bytes sent). Stopped when the
/// test is done (`stop()`, or when released).
final class HubTestServer {
    /// One request the server answered.
    struct Request: Decodable {
        var method: String
        var path: String
        var range: String?
        var status: Int
        var bytes: Int
    }

    static let script = URL(fileURLWithPath: Fixtures.conformance).deletingLastPathComponent()
        .appendingPathComponent("hub/hub_server.py").path

    let port: Int
    private let process: Process
    private let log: String

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Starts a server for `repos` (repo id → directory), with `options` passed on (`--gated ID`, `--token T`,
    /// `--page-size N`, `--stall-after FILE=N`, …).
    /// - Throws: `XCTSkip` when python3 cannot be started; an error when the server does not announce its port.
    init(repos: [String: String], options: [String] = []) throws {
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
            .first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw XCTSkip("python3 is not installed: the Hub tests need it for their local server")
        }
        log = Fixtures.temporaryDirectory("hub-log") + "/requests.jsonl"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [Self.script, "--log", log] + repos.sorted { $0.key < $1.key }.flatMap { ["--repo", "\($0)=\($1)"] }
            + options
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        let deadline = Date().addingTimeInterval(20)
        while !line.contains(UInt8(ascii: "\n")) && Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw XCTSkip("the local Hub server did not start (python3 \(Self.script))")
        }
        self.port = port
        self.process = process
    }

    deinit { stop() }

    /// Stops the server (the process this test started, by its id) and waits for it.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Every request answered so far, in order.
    func requests() -> [Request] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }

    /// Body bytes sent for `file` (`REPO/PATH`) by downloads (GET of `/REPO/resolve/…/PATH`).
    func bytesSent(_ file: String) -> Int {
        downloads(of: file).reduce(0) { $0 + $1.bytes }
    }

    /// The downloads of `file` (`REPO/PATH`): GET requests for all of it or for the rest from an offset, not the
    /// header reads of a plan.
    func fullDownloads(of file: String) -> [Request] {
        downloads(of: file).filter { $0.range == nil || $0.range!.hasSuffix("-") }
    }

    /// The GET requests of `file` (`REPO/PATH`).
    func downloads(of file: String) -> [Request] {
        guard let slash = file.lastIndex(of: "/") else { return [] }
        let (repo, name) = (file[..<slash], file[file.index(after: slash)...])
        return requests().filter {
            $0.method == "GET" && $0.path.hasPrefix("/\(repo)/resolve/") && $0.path.hasSuffix("/\(name)")
        }
    }
}
