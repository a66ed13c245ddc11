import Synchronization
import Foundation
import XCTest

/// One merge split across workers (`run --partition I/N`, then `finalize`), run through the binary as separate
/// processes at once: the result is byte-identical to one ordinary run, a missing or damaged shard makes `finalize`
/// name the partition to rerun, and the worker's index and count come from Slurm's or Kubernetes' variables.
final class PartitionTests: XCTestCase {
    let fm = FileManager.default
    /// Small shards, so that the fixtures' models make several.
    let shardSize = ["--out-shard-size", "50K"]

    /// Every file under `dir` (relative paths, sorted) with its contents.
    private func contents(_ dir: String) -> [String: Data] {
        var result: [String: Data] = [:]
        for path in fm.subpaths(atPath: dir) ?? [] {
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: "\(dir)/\(path)", isDirectory: &isDirectory), !isDirectory.boolValue {
                result[path] = fm.contents(atPath: "\(dir)/\(path)")
            }
        }
        return result
    }

    /// Runs `count` partitions of `config` concurrently into `out`, each as its own process.
    private func runPartitions(_ config: String, out: String, count: Int, extra: [String] = []) throws {
        let group = DispatchGroup()
        let results = Mutex<[Int: Binary.Result]>([:])
        let shardSize = self.shardSize
        for i in 1...count {
            DispatchQueue.global().async(group: group) {
                let result = try? Binary.run(["run", config, out, "--partition", "\(i)/\(count)", "--quiet"]
                                             + shardSize + extra)
                results.withLock { $0[i] = result }
            }
        }
        group.wait()
        for i in 1...count {
            let result = results.withLock { $0[i] }
            XCTAssertEqual(result?.status, 0, "partition \(i)/\(count): \(result?.stderr ?? "did not run")")
        }
    }

    /// N = 1, 2 and 3 workers plus finalize give the bytes of one run, for a merge and for a chain.
    func testPartitionsPlusFinalizeEqualOneRun() throws {
        for name in ["ties", "ties_then_slerp"] {
            let config = Fixtures.caseConfig(name)
            let dir = Fixtures.temporaryDirectory("partition-\(name)")
            defer { try? fm.removeItem(atPath: dir) }
            // Same folder name: the model card is titled after it.
            let single = try Binary.run(["run", config, "\(dir)/single/out", "--quiet"] + shardSize)
            XCTAssertEqual(single.status, 0, single.stderr)
            let reference = contents("\(dir)/single/out")
            XCTAssertGreaterThan(reference.keys.filter { $0.hasSuffix(".safetensors") }.count, 2, "several shards")
            for count in 1...3 {
                let out = "\(dir)/\(count)/out"
                try runPartitions(config, out: out, count: count)
                XCTAssertNotNil(contents(out).keys.first { $0.hasPrefix(".mergegraph/partition-") }, "ledgers before finalize")
                XCTAssertNil(contents(out)["config.json"], "no side files before finalize")
                let finalize = try Binary.run(["finalize", config, out] + shardSize)
                XCTAssertEqual(finalize.status, 0, finalize.stderr)
                let result = contents(out)
                XCTAssertEqual(result.keys.sorted(), reference.keys.sorted(), "\(name), \(count) partition(s)")
                for (file, data) in reference { XCTAssertTrue(result[file] == data, "\(name), \(count): \(file) differs") }
            }
        }
    }

    /// A shard missing or damaged: finalize fails, names the shard and the partition to rerun, and writes nothing;
    /// rerunning that partition alone repairs it.
    func testFinalizeNamesThePartitionToRerun() throws {
        let config = Fixtures.caseConfig("ties")
        let dir = Fixtures.temporaryDirectory("partition-missing")
        defer { try? fm.removeItem(atPath: dir) }
        let out = "\(dir)/out"
        try runPartitions(config, out: out, count: 3)
        let plan = try Binary.run(["plan", config, "--partition", "2/3"] + shardSize)
        let line = plan.stdout.split(separator: "\n").first { $0.contains("partition 2/3 (this run):") } ?? ""
        guard let shard = line.split(separator: ":").dropFirst().first?.split(separator: ",").first?
            .trimmingCharacters(in: .whitespaces).split(separator: ";").first.map(String.init) else {
            return XCTFail("plan shows no shard of partition 2/3: \(plan.stdout)")
        }
        try fm.removeItem(atPath: "\(out)/\(shard)")
        let missing = try Binary.run(["finalize", config, out] + shardSize)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("partition 2/3: \(shard) is missing"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("--partition 2/3"), missing.stderr)
        XCTAssertFalse(fm.fileExists(atPath: "\(out)/config.json"), "a failed finalize writes nothing")
        // Rerun partition 2 with --resume: its other shards are kept, the missing one is computed again.
        let rerun = try Binary.run(["run", config, out, "--partition", "2/3", "--resume", "--quiet"] + shardSize)
        XCTAssertEqual(rerun.status, 0, rerun.stderr)
        // A damaged shard (one byte changed) is caught by its hash.
        let victim = "\(out)/\(shard)"
        var bytes = try XCTUnwrap(fm.contents(atPath: victim))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: victim))
        let damaged = try Binary.run(["finalize", config, out] + shardSize)
        XCTAssertEqual(damaged.status, 1)
        XCTAssertTrue(damaged.stderr.contains("\(shard) is damaged"), damaged.stderr)
        let repair = try Binary.run(["run", config, out, "--partition", "2/3", "--quiet"] + shardSize)
        XCTAssertEqual(repair.status, 0, repair.stderr)
        let finalize = try Binary.run(["finalize", config, out] + shardSize)
        XCTAssertEqual(finalize.status, 0, finalize.stderr)
        XCTAssertFalse(fm.fileExists(atPath: "\(out)/.mergegraph"), "finalize removes the control folder")
        // A different shard size is another plan: its finalize refuses the shards.
        try runPartitions(config, out: "\(dir)/other", count: 2)
        let foreign = try Binary.run(["finalize", config, "\(dir)/other", "--out-shard-size", "60K"])
        XCTAssertEqual(foreign.status, 1)
        XCTAssertTrue(foreign.stderr.contains("partitions 1/2, 2/2 ran a different plan from the one finalize compiled"),
                      foreign.stderr)
        XCTAssertEqual(foreign.stderr.components(separatedBy: "different plan").count, 2, "said once, not per shard")
        XCTAssertTrue(foreign.stderr.contains("give finalize the config and options (--out-shard-size"), foreign.stderr)
    }

    /// `--partition auto` reads Slurm's array variables; `--partition-count` reads Kubernetes' completion index;
    /// bad values are errors naming what is wrong.
    func testWorkerIndexFromTheEnvironment() throws {
        let config = Fixtures.caseConfig("ties")
        func planLine(_ arguments: [String], _ environment: [String: String]) throws -> Binary.Result {
            try Binary.run(["plan", config] + shardSize + arguments, environment: environment)
        }
        let slurm = try planLine(["--partition", "auto"],
                                 ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"])
        XCTAssertTrue(slurm.stdout.contains("partition 3/3 (this run)"), slurm.stdout + slurm.stderr)
        let slurmMax = try planLine(["--partition", "auto"],
                                    ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "1"])
        XCTAssertTrue(slurmMax.stdout.contains("partition 1/2 (this run)"), slurmMax.stdout + slurmMax.stderr)
        let kubernetes = try planLine(["--partition-count", "4"], ["JOB_COMPLETION_INDEX": "1"])
        XCTAssertTrue(kubernetes.stdout.contains("partition 2/4 (this run)"), kubernetes.stdout + kubernetes.stderr)
        for (arguments, environment, phrase) in [
            (["--partition", "4/3"], [String: String](), "out of range"),
            (["--partition", "two"], [:], "is not I/N"),
            (["--partition", "auto"], [:], "none of SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX"),
            (["--partition", "auto"], ["JOB_COMPLETION_INDEX": "0"], "--partition-count"),
        ] {
            let result = try planLine(arguments, environment)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(phrase), "\(arguments): \(result.stderr)")
        }
    }
}
