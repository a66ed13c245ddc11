import Checkpoint
import Foundation
import Hub
import XCTest

/// Models named by Hugging Face Hub repo ids, against a local server speaking the Hub's API (`HubTestServer`): the
/// same bytes as local paths, the cache huggingface_hub lays out, offline runs, header-only plans, resumed and
/// verified downloads, and errors that name the repo and what to do.
final class HubRepoTests: XCTestCase {
    static let models = "\(Fixtures.conformance)/models"
    /// The repos the server offers: three Llama models (ft-b sharded in 12 files) and the LoRA adapter.
    static let repos = [
        "test/llama-base": "\(models)/llama-base", "test/llama-ft-a": "\(models)/llama-ft-a",
        "test/llama-ft-b": "\(models)/llama-ft-b-sharded", "test/lora-a": "\(models)/lora-a",
    ]

    /// A TIES merge of three repos, one at a tag.
    static let config = """
        models:
          - model: test/llama-ft-a
            parameters: {weight: 0.5, density: 0.5}
          - model: test/llama-ft-b@v1.0
            parameters: {weight: 0.5, density: 0.5}
        merge_method: ties
        base_model: test/llama-base
        dtype: float32
        """

    private var work = ""

    override func setUp() {
        work = Fixtures.temporaryDirectory("hub")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: work)
    }

    /// Writes `text` as `NAME.yml` in the work folder and returns its path.
    private func config(_ text: String, _ name: String = "hub") throws -> String {
        let path = "\(work)/\(name).yml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `mergegraph ARGUMENTS` online against `server` with the cache `cache`.
    private func run(_ arguments: [String], server: HubTestServer?, cache: String,
                     environment: [String: String] = [:]) throws -> Binary.Result {
        var env = ["HF_HUB_OFFLINE": "", "HF_HUB_CACHE": cache, "HF_TOKEN": "",
                   "HF_HOME": "\(work)/hf-home", "HF_ENDPOINT": server?.endpoint ?? "http://127.0.0.1:1"]
        for (key, value) in environment { env[key] = value }
        return try Binary.run(arguments, environment: env)
    }

    /// The merge of `Self.config` with local paths, as reference bytes.
    private func localReference() throws -> Data {
        let local = Self.config.replacingOccurrences(of: "test/llama-ft-b@v1.0", with: "\(Self.models)/llama-ft-b-sharded")
            .replacingOccurrences(of: "test/", with: "\(Self.models)/")
        let result = try Binary.run(["run", try config(local, "local"), "\(work)/local", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try Fixtures.shardBytes("\(work)/local/model.safetensors")
    }

    func testRepoIDsGiveTheBytesOfLocalPathsAndRunOfflineFromTheCache() throws {
        let server = try HubTestServer(repos: Self.repos, options: ["--page-size", "3"])
        let cache = "\(work)/cache"
        let path = try config(Self.config)
        let online = try run(["run", path, "\(work)/online"], server: server, cache: cache)
        XCTAssertEqual(online.status, 0, online.stderr)
        XCTAssertTrue(online.stderr.contains("downloading 14 file(s)"), online.stderr)
        let reference = try localReference()
        XCTAssertEqual(try Fixtures.shardBytes("\(work)/online/model.safetensors"), reference)

        // The cache as huggingface_hub lays it out: refs, relative symlinks into blobs named by ETag.
        let repo = "\(cache)/models--test--llama-ft-b"
        let commit = try String(contentsOfFile: "\(repo)/refs/v1.0", encoding: .utf8)
        XCTAssertTrue(HubSettings.isCommitHash(commit))
        let shard = "\(repo)/snapshots/\(commit)/model-00001-of-00012.safetensors"
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: shard)
        XCTAssertTrue(target.hasPrefix("../../blobs/") && target.count == "../../blobs/".count + 64, target)
        let config = try FileManager.default.destinationOfSymbolicLink(atPath: "\(repo)/snapshots/\(commit)/config.json")
        XCTAssertEqual(config.count, "../../blobs/".count + 40, "a git blob id")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(cache)/CACHEDIR.TAG"))

        // Offline, with the server gone: the cache alone.
        server.stop()
        let offline = try run(["run", path, "\(work)/offline"], server: nil, cache: cache,
                              environment: ["HF_HUB_OFFLINE": "1"])
        XCTAssertEqual(offline.status, 0, offline.stderr)
        XCTAssertEqual(try Fixtures.shardBytes("\(work)/offline/model.safetensors"), reference)
        // Online but unreachable: the cache, with a warning.
        let unreachable = try run(["run", path, "\(work)/unreachable"], server: nil, cache: cache)
        XCTAssertEqual(unreachable.status, 0, unreachable.stderr)
        XCTAssertTrue(unreachable.stderr.contains("warning: cannot reach the Hugging Face Hub"), unreachable.stderr)
        // --transformers-cache names the cache as mergekit's option does.
        let named = try run(["run", path, "\(work)/named", "--transformers-cache", cache], server: nil,
                            cache: "\(work)/elsewhere", environment: ["HF_HUB_OFFLINE": "1"])
        XCTAssertEqual(named.status, 0, named.stderr)
    }

    /// `plan` downloads no weights: each safetensors file costs its 8-byte length and its header, by Range requests.
    func testPlanFetchesOnlySafetensorsHeaders() throws {
        let server = try HubTestServer(repos: Self.repos)
        let cache = "\(work)/cache"
        let plan = try run(["plan", try config(Self.config)], server: server, cache: cache)
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("// download before a run: 14 file(s)"), plan.stdout)
        var files = [("test/llama-ft-a", "model.safetensors"), ("test/llama-base", "model.safetensors")]
        for i in 1...12 { files.append(("test/llama-ft-b", String(format: "model-%05d-of-00012.safetensors", i))) }
        var weightBytes = 0
        for (repo, name) in files {
            let directory = Self.repos[repo]!
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)"))
            let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let requests = server.downloads(of: "\(repo)/\(name)")
            XCTAssertEqual(requests.map(\.range), ["bytes=0-7", "bytes=8-\(7 + headerLength)"], name)
            XCTAssertEqual(server.bytesSent("\(repo)/\(name)"), 8 + headerLength, name)
            weightBytes += data.count
        }
        let sent = server.requests().reduce(0) { $0 + $1.bytes }
        XCTAssertLessThan(sent, weightBytes / 10, "headers, listings and configs only")
        let blobs = try FileManager.default.subpathsOfDirectory(atPath: cache).filter { $0.contains("/blobs/") }
        XCTAssertEqual(blobs.count, 4, "the config.json of three repos and one index: \(blobs)")
    }

    /// A run killed mid-download leaves `blobs/ETAG.incomplete`; the next run resumes it with a Range request and
    /// does not fetch what it already has. A connection cut within a run is resumed the same way at once.
    func testInterruptedDownloadsResumeWithoutRefetching() throws {
        let file = "test/llama-ft-a/model.safetensors"
        let size = try Data(contentsOf: URL(fileURLWithPath: "\(Self.models)/llama-ft-a/model.safetensors")).count
        let server = try HubTestServer(repos: Self.repos, options: ["--stall-after", "\(file)=50000"])
        let cache = "\(work)/cache"
        let path = try config(Self.config)
        let process = Process()
        process.executableURL = Binary.binary
        process.arguments = ["run", path, "\(work)/killed", "--quiet"]
        process.environment = Binary.environment(["HF_HUB_OFFLINE": "", "HF_HUB_CACHE": cache, "HF_ENDPOINT": server.endpoint])
        process.standardError = FileHandle.nullDevice
        try process.run()
        let blobs = "\(cache)/models--test--llama-ft-a/blobs"
        var partial: String?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let found = (try? FileManager.default.contentsOfDirectory(atPath: blobs))?.first { $0.hasSuffix(".incomplete") }
            if let found, let size = try? FileManager.default.attributesOfItem(atPath: "\(blobs)/\(found)")[.size] as? Int,
               size == 50000 {
                partial = found
                break
            }
            usleep(20000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let incomplete = try XCTUnwrap(partial, "the download never reached the stall")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/killed"), "a killed run leaves no output")

        let resumed = try run(["run", path, "\(work)/resumed"], server: server, cache: cache)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try Fixtures.shardBytes("\(work)/resumed/model.safetensors"), try localReference())
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(blobs)/\(incomplete)"))
        let downloads = server.fullDownloads(of: file)
        XCTAssertEqual(downloads.map(\.range), [nil, "bytes=50000-"])
        XCTAssertEqual(downloads.map(\.bytes), [50000, size - 50000], "nothing fetched twice")
    }

    /// A run killed after a download's last byte but before its rename leaves a complete `ETAG.incomplete`: the next
    /// run checks those bytes and links them without asking the Hub for `bytes=SIZE-` (which it answers 416); a
    /// complete but wrong one is fetched again from the start.
    func testCompleteUnrenamedDownloadIsLinkedWithoutRefetching() throws {
        let file = "test/llama-ft-a/model.safetensors"
        let server = try HubTestServer(repos: Self.repos)
        let cache = "\(work)/cache"
        let path = try config(Self.config)
        let first = try run(["run", path, "\(work)/first", "--quiet"], server: server, cache: cache)
        XCTAssertEqual(first.status, 0, first.stderr)
        let reference = try localReference()
        XCTAssertEqual(server.fullDownloads(of: file).count, 1)

        let repo = "\(cache)/models--test--llama-ft-a"
        func unlinkBlob(corrupting: Bool) throws {
            let snapshot = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: "\(repo)/snapshots").first)
            let link = "\(repo)/snapshots/\(snapshot)/model.safetensors"
            let blob = "\(repo)/snapshots/\(snapshot)/" + (try FileManager.default.destinationOfSymbolicLink(atPath: link))
            try FileManager.default.removeItem(atPath: link)
            if corrupting {
                var bytes = try Data(contentsOf: URL(fileURLWithPath: blob))
                bytes[100] ^= 0xFF
                try bytes.write(to: URL(fileURLWithPath: blob))
            }
            try FileManager.default.moveItem(atPath: blob, toPath: blob + ".incomplete")
        }
        try unlinkBlob(corrupting: false)
        let second = try run(["run", path, "\(work)/second", "--quiet"], server: server, cache: cache)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(try Fixtures.shardBytes("\(work)/second/model.safetensors"), reference)
        XCTAssertEqual(server.fullDownloads(of: file).count, 1, "the complete bytes were linked, not fetched again")

        try unlinkBlob(corrupting: true)
        let third = try run(["run", path, "\(work)/third", "--quiet"], server: server, cache: cache)
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertEqual(try Fixtures.shardBytes("\(work)/third/model.safetensors"), reference)
        XCTAssertEqual(server.fullDownloads(of: file).map(\.range), [nil, nil], "wrong complete bytes are fetched from the start")
    }

    /// Bytes that do not hash to the Hub's SHA-256 are never linked into a snapshot: a corrupted download is fetched
    /// again, and so is a corrupted blob left in the cache. A connection cut during a download is resumed at once.
    func testCorruptedBlobsAreRefetchedNotUsed() throws {
        let file = "test/llama-ft-a/model.safetensors"
        let local = "\(Self.models)/llama-ft-a/model.safetensors"
        let server = try HubTestServer(repos: Self.repos, options: ["--corrupt-once", file,
                                                                     "--cut-after", "test/llama-base/model.safetensors=30000"])
        let cache = "\(work)/cache"
        let path = try config(Self.config)
        let first = try run(["run", path, "\(work)/first", "--quiet"], server: server, cache: cache)
        XCTAssertEqual(first.status, 0, first.stderr)
        let reference = try localReference()
        XCTAssertEqual(try Fixtures.shardBytes("\(work)/first/model.safetensors"), reference)
        let size = try Data(contentsOf: URL(fileURLWithPath: local)).count
        XCTAssertEqual(server.fullDownloads(of: file).map(\.bytes), [size, size], "the corrupted download was fetched again")
        let base = server.fullDownloads(of: "test/llama-base/model.safetensors")
        XCTAssertEqual(base.map(\.range), [nil, "bytes=30000-"], "the cut download was resumed")
        XCTAssertEqual(base.map(\.bytes).reduce(0, +), try Data(contentsOf: URL(fileURLWithPath: "\(Self.models)/llama-base/model.safetensors")).count)

        // A blob of the right size but wrong bytes, not linked yet (another tool's, or a disk error).
        let repo = "\(cache)/models--test--llama-ft-a"
        let snapshot = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: "\(repo)/snapshots").first)
        let link = "\(repo)/snapshots/\(snapshot)/model.safetensors"
        let blob = "\(repo)/snapshots/\(snapshot)/" + (try FileManager.default.destinationOfSymbolicLink(atPath: link))
        try FileManager.default.removeItem(atPath: link)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: blob))
        bytes[100] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: blob))
        let second = try run(["run", path, "\(work)/second", "--quiet"], server: server, cache: cache)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(try Fixtures.shardBytes("\(work)/second/model.safetensors"), reference)
        XCTAssertEqual(server.fullDownloads(of: file).count, 3)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: link)), try Data(contentsOf: URL(fileURLWithPath: local)))
    }

    /// A repo that does not exist, a gated one without a token, a revision that does not exist, an unreachable Hub,
    /// offline with nothing cached: each an error at the config position naming the repo and what to do, within
    /// seconds, with no output.
    func testResolutionErrorsNameTheRepoAndWhatToDo() throws {
        let server = try HubTestServer(repos: Self.repos, options: ["--gated", "test/llama-ft-a", "--token", "hf_secret"])
        let cases: [(model: String, environment: [String: String], phrases: [String])] = [
            ("test/no-such-model", [:], ["no such directory", "repository 'test/no-such-model' does not exist on \(server.endpoint)",
                                         "private", "HF_TOKEN"]),
            ("test/llama-ft-a", [:], ["'test/llama-ft-a' is a gated repository", "HF_TOKEN", "\(server.endpoint)/test/llama-ft-a"]),
            ("test/llama-base@no-such-branch", [:], ["revision 'no-such-branch' of 'test/llama-base' does not exist"]),
            ("test/llama-base", ["HF_ENDPOINT": "http://127.0.0.1:1"], ["cannot reach the Hugging Face Hub at http://127.0.0.1:1",
                                                                        "HF_HUB_OFFLINE=1"]),
            ("test/llama-base", ["HF_HUB_OFFLINE": "1"], ["HF_HUB_OFFLINE is set", "has no snapshot of 'test/llama-base'"]),
        ]
        for (model, environment, phrases) in cases {
            let text = "models:\n  - model: \(model)\nmerge_method: passthrough\n"
            let started = Date()
            let result = try run(["run", try config(text, "error"), "\(work)/out"], server: server, cache: "\(work)/cache",
                                 environment: environment)
            XCTAssertLessThan(Date().timeIntervalSince(started), 10, model)
            XCTAssertEqual(result.status, 1, model)
            XCTAssertTrue(result.stderr.hasPrefix("error: \(work)/error.yml:2:12: model '"), result.stderr)
            for phrase in phrases { XCTAssertTrue(result.stderr.contains(phrase), "\(model): \(result.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/out"), model)
        }
        // With the token, from HF_TOKEN or the token file huggingface_hub writes, the gated repo resolves.
        let text = "models:\n  - model: test/llama-ft-a\nmerge_method: passthrough\n"
        XCTAssertEqual(try run(["plan", try config(text)], server: server, cache: "\(work)/cache",
                               environment: ["HF_TOKEN": "hf_secret"]).status, 0)
        try FileManager.default.createDirectory(atPath: "\(work)/hf-home", withIntermediateDirectories: true)
        try "hf_secret\n".write(toFile: "\(work)/hf-home/token", atomically: true, encoding: .utf8)
        let file = try run(["plan", try config(text)], server: server, cache: "\(work)/cache")
        XCTAssertEqual(file.status, 0, file.stderr)
    }

    /// `base+adapter` with a Hub base, and with both parts on the Hub: `rw_lora`'s tensors.
    func testLoRAOnHubModels() throws {
        let server = try HubTestServer(repos: Self.repos)
        let expected = try CheckpointComparison.tensors(in: Fixtures.expected("rw_lora"))
        let original = try String(contentsOfFile: "\(Fixtures.conformance)/cases/rw_lora/config.yml", encoding: .utf8)
        for adapter in ["\(Self.models)/lora-a", "test/lora-a"] {
            let text = original.replacingOccurrences(of: "models/llama-base+models/lora-a", with: "test/llama-base+\(adapter)")
                .replacingOccurrences(of: "models/llama-base", with: "test/llama-base")
                .replacingOccurrences(of: "models/llama-ft-b", with: "\(Self.models)/llama-ft-b")
            let out = "\(work)/lora-\(adapter.hasPrefix("test") ? "hub" : "local")"
            let result = try run(["run", try config(text, "lora"), out, "--quiet"], server: server, cache: "\(work)/cache")
            XCTAssertEqual(result.status, 0, result.stderr)
            let actual = try CheckpointComparison.tensors(in: out)
            for (name, (_, values)) in expected {
                XCTAssertEqual(actual[name]?.1.map(\.bitPattern), values.map(\.bitPattern), "\(adapter): \(name)")
            }
        }
    }
}
