import Foundation
import XCTest

/// The cache is shared with the real huggingface_hub: installed from PyPI into a throwaway virtualenv (the test is
/// skipped, saying why, when that is not possible), it reads offline what mergegraph downloaded, and mergegraph reads
/// offline what it downloaded from the same local Hub server.
final class HubInteropTests: XCTestCase {
    /// Runs `executable ARGUMENTS` with `environment` added, up to `timeout` seconds; returns its status and output.
    private func shell(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                       timeout: TimeInterval = 300) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        nonisolated(unsafe) var output = Data()
        let reader = DispatchGroup()
        DispatchQueue.global().async(group: reader) { output = pipe.fileHandleForReading.readDataToEndOfFile() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        reader.wait()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    func testHuggingFaceHubReadsOurCacheAndWeReadItsCache() throws {
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw XCTSkip("python3 is not installed: huggingface_hub cannot be installed to check the shared cache")
        }
        let work = Fixtures.temporaryDirectory("hub-interop")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let venv = "\(work)/venv"
        let created = try shell(python, ["-m", "venv", venv], timeout: 120)
        guard created.status == 0 else {
            throw XCTSkip("no virtualenv for huggingface_hub (python3 -m venv failed: \(created.output.suffix(300))); "
                          + "the interoperability check with the real client is skipped")
        }
        let installed = try shell("\(venv)/bin/python", ["-m", "pip", "install", "-q", "--disable-pip-version-check",
                                                         "huggingface_hub"], timeout: 300)
        guard installed.status == 0 else {
            throw XCTSkip("huggingface_hub could not be installed from PyPI (\(installed.output.suffix(300))); "
                          + "the interoperability check with the real client is skipped")
        }
        let server = try HubTestServer(repos: HubRepoTests.repos)
        let config = "\(work)/hub.yml"
        try HubRepoTests.config.write(toFile: config, atomically: true, encoding: .utf8)
        let ours = "\(work)/ours", theirs = "\(work)/theirs"

        // mergegraph downloads; huggingface_hub reads that cache offline.
        let merged = try Binary.run(["run", config, "\(work)/out1", "--quiet"], environment: [
            "HF_HUB_OFFLINE": "", "HF_HUB_CACHE": ours, "HF_ENDPOINT": server.endpoint, "HF_TOKEN": ""])
        XCTAssertEqual(merged.status, 0, merged.stderr)
        let read = try shell("\(venv)/bin/python", ["-c", """
            import os
            from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download
            for repo, revision in [("test/llama-base", None), ("test/llama-ft-a", None), ("test/llama-ft-b", "v1.0")]:
                path = snapshot_download(repo, revision=revision)
                assert os.path.isfile(os.path.join(path, "config.json")), path
                print(repo, sorted(os.listdir(path))[:2])
            weights = hf_hub_download("test/llama-ft-a", "model.safetensors")
            assert os.path.getsize(weights) == 185336, weights
            report = scan_cache_dir()
            assert not report.warnings, report.warnings
            assert sorted(r.repo_id for r in report.repos) == ["test/llama-base", "test/llama-ft-a", "test/llama-ft-b"], report.repos
            print("ok")
            """], environment: ["HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": ours, "HF_HUB_DISABLE_TELEMETRY": "1"], timeout: 120)
        XCTAssertEqual(read.status, 0, read.output)
        XCTAssertTrue(read.output.hasSuffix("ok\n"), read.output)

        // huggingface_hub downloads (what mergekit asks for: *.json and *.safetensors); mergegraph reads it offline.
        let fetched = try shell("\(venv)/bin/python", ["-c", """
            from huggingface_hub import snapshot_download
            for repo, revision in [("test/llama-base", None), ("test/llama-ft-a", None), ("test/llama-ft-b", "v1.0")]:
                snapshot_download(repo, revision=revision, allow_patterns=["tokenizer.model", "*.json", "*.safetensors"])
            print("ok")
            """], environment: ["HF_HUB_CACHE": theirs, "HF_ENDPOINT": server.endpoint, "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": ""], timeout: 120)
        XCTAssertEqual(fetched.status, 0, fetched.output)
        server.stop()
        let offline = try Binary.run(["run", config, "\(work)/out2", "--quiet"], environment: [
            "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": theirs])
        XCTAssertEqual(offline.status, 0, offline.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(work)/out2/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: "\(work)/out1/model.safetensors")))
    }
}
