import Foundation
import Synchronization
import XCTest

/// `deploy/`: the Slurm script, run through a stand-in `sbatch` and then as its array tasks and finalize job would
/// run (the variables Slurm sets exported), gives the bytes of one run; the Kubernetes manifest validates against
/// the Job schema and keeps its worker counts equal.
final class DeployTests: XCTestCase {
    let fm = FileManager.default
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy").path

    /// Runs `executable arguments` in `directory` with `environment` added; returns status and both outputs.
    private static func shell(_ executable: String, _ arguments: [String], in directory: String,
                       environment: [String: String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = Binary.environment(environment)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testSlurmArrayAndFinalizeGiveTheBytesOfOneRun() throws {
        let script = "\(Self.deploy)/slurm/merge.sbatch"
        let dir = Fixtures.temporaryDirectory("slurm")
        defer { try? fm.removeItem(atPath: dir) }
        let config = Fixtures.caseConfig("ties"), options = ["--out-shard-size", "50K"]
        // The stand-in sbatch records its arguments and answers with job ids 101, 102.
        let stub = "\(dir)/sbatch"
        try """
            #!/bin/sh
            echo "$@" >> "\(dir)/submitted"
            n=$(wc -l < "\(dir)/submitted")
            echo "$((100 + n))"
            """.write(toFile: stub, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(stub, 0o755), 0)
        let submit = try Self.shell(script, ["3", config, "\(dir)/out"] + options, in: Fixtures.conformance,
                               environment: ["SBATCH": stub, "SLURM_JOB_ID": ""])
        XCTAssertEqual(submit.status, 0, submit.output)
        XCTAssertTrue(submit.output.contains("job 101 (array 1-3); finalize: job 102"), submit.output)
        let calls = try String(contentsOfFile: "\(dir)/submitted", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(calls.count, 2)
        XCTAssertEqual(calls.first, "--parsable --array=1-3 \(script) run \(config) \(dir)/out --out-shard-size 50K")
        XCTAssertEqual(calls.last, "--parsable --dependency=afterok:101 --job-name=mergegraph-finalize \(script) finalize \(config) \(dir)/out --out-shard-size 50K")
        // The array's tasks, at once, with what Slurm sets; then the finalize job.
        let group = DispatchGroup()
        let statuses = Mutex<[Int: (Int32, String)]>([:])
        let binary = Binary.binary.path, conformance = Fixtures.conformance, out = "\(dir)/out"
        for task in 1...3 {
            DispatchQueue.global().async(group: group) {
                let result = try? Self.shell(script, ["run", config, out] + options, in: conformance, environment: [
                    "SLURM_JOB_ID": "101", "SLURM_ARRAY_JOB_ID": "101", "SLURM_ARRAY_TASK_ID": "\(task)",
                    "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3", "SLURM_ARRAY_TASK_COUNT": "3",
                    "SLURM_CPUS_PER_TASK": "1", "MERGEGRAPH": binary,
                ])
                statuses.withLock { $0[task] = result.map { ($0.status, $0.output) } }
            }
        }
        group.wait()
        for task in 1...3 {
            let result = statuses.withLock { $0[task] }
            XCTAssertEqual(result?.0, 0, "task \(task): \(result?.1 ?? "did not run")")
        }
        let finalize = try Self.shell(script, ["finalize", config, out] + options, in: conformance,
                                 environment: ["SLURM_JOB_ID": "102", "MERGEGRAPH": binary])
        XCTAssertEqual(finalize.status, 0, finalize.output)
        // Same folder name: the model card is titled after it.
        let single = try Binary.run(["run", config, "\(dir)/single/out", "--quiet"] + options)
        XCTAssertEqual(single.status, 0, single.stderr)
        let files = try fm.contentsOfDirectory(atPath: "\(dir)/single/out").sorted()
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: out).sorted(), files)
        for file in files {
            XCTAssertTrue(fm.contentsEqual(atPath: "\(out)/\(file)", andPath: "\(dir)/single/out/\(file)"), file)
        }
        let usage = try Self.shell(script, ["three", config, out], in: dir, environment: ["SBATCH": stub, "SLURM_JOB_ID": ""])
        XCTAssertEqual(usage.status, 64, usage.output)
    }

    func testKubernetesManifestValidatesAgainstTheJobSchema() throws {
        let manifest = "\(Self.deploy)/kubernetes/merge-job.yaml"
        let text = try String(contentsOfFile: manifest, encoding: .utf8)
        // completions = parallelism = --partition-count.
        func values(after key: String) -> [String] {
            let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            return lines.indices.compactMap { i -> String? in
                if lines[i].hasPrefix(key + ":") { return lines[i].dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces) }
                if lines[i] == "- --partition-count", key == "--partition-count", i + 1 < lines.count {
                    return lines[i + 1].dropFirst(2).trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
                }
                return nil
            }
        }
        XCTAssertEqual(values(after: "completions"), ["4"])
        XCTAssertEqual(values(after: "parallelism"), ["4"])
        XCTAssertEqual(values(after: "--partition-count"), ["4"])
        let check = try Self.shell("/usr/bin/env", ["python3", "-c", "import kubernetes_validate"], in: Self.deploy, environment: [:])
        guard check.status == 0 else {
            throw XCTSkip("kubernetes-validate is not installed (pip install kubernetes-validate; .ci/run does): \(check.output)")
        }
        let result = try Self.shell("/usr/bin/env", ["python3", "-m", "kubernetes_validate", "--strict", manifest],
                               in: Self.deploy, environment: [:])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("passed for resource job/mergegraph-partitions"), result.output)
        XCTAssertTrue(result.output.contains("passed for resource job/mergegraph-finalize"), result.output)
    }
}
