import Checkpoint
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

    /// The `ties` case run as three partitions into `out` of a fresh directory `dir` (labelled `label`), then
    /// partition 2/3's first shard (`shard`) removed.
    private func partitionsWithAShardRemoved(_ label: String) throws
        -> (config: String, dir: String, out: String, shard: String) {
        let config = Fixtures.caseConfig("ties")
        let dir = Fixtures.temporaryDirectory(label)
        let out = "\(dir)/out"
        try runPartitions(config, out: out, count: 3)
        let shard = try firstShard(of: "2/3", config)
        try fm.removeItem(atPath: "\(out)/\(shard)")
        return (config, dir, out, shard)
    }

    /// A shard missing or damaged: finalize fails, names the shard and the partition to rerun, and writes nothing;
    /// rerunning that partition alone repairs it.
    func testFinalizeNamesThePartitionToRerun() throws {
        let (config, dir, out, shard) = try partitionsWithAShardRemoved("partition-missing")
        defer { try? fm.removeItem(atPath: dir) }
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
        XCTAssertTrue(foreign.stderr.contains("they wrote "), foreign.stderr)
        // Another density is another plan with the same shards: the message does not list them as if they differed.
        let text = try String(contentsOfFile: "\(Fixtures.conformance)/\(config)", encoding: .utf8)
        XCTAssertTrue(text.contains("density: 0.5"))
        try fm.createSymbolicLink(atPath: "\(dir)/models", withDestinationPath: "\(Fixtures.conformance)/models")
        try text.replacingOccurrences(of: "density: 0.5", with: "density: 0.4")
            .write(toFile: "\(dir)/denser.yml", atomically: true, encoding: .utf8)
        let changed = try Binary.run(["finalize", "denser.yml", "\(dir)/other"] + shardSize, in: dir)
        XCTAssertEqual(changed.status, 1)
        XCTAssertTrue(changed.stderr.contains("they wrote the shards this plan has, so the config, an input's bytes or an "
                                              + "option other than --out-shard-size differs"), changed.stderr)
    }

    /// The first shard `plan --partition partition` (`I/N`) deals to that partition.
    private func firstShard(of partition: String, _ config: String) throws -> String {
        let plan = try Binary.run(["plan", config, "--partition", partition] + shardSize)
        let line = plan.stdout.split(separator: "\n").first { $0.contains("partition \(partition) (this run):") } ?? ""
        let shard = line.split(separator: ":").dropFirst().first?.split(separator: ",").first?
            .trimmingCharacters(in: .whitespaces).split(separator: ";").first.map(String.init)
        return try XCTUnwrap(shard, "plan shows no shard of partition \(partition): \(plan.stdout)")
    }

    /// A shard that is there but cannot be read (a directory in its place, which stops reads by root too): finalize
    /// says so with the system's reason, not that it is missing, names the partition to rerun, writes nothing and
    /// leaves the directory (not ours) where it is.
    func testFinalizeSaysWhyAShardCannotBeRead() throws {
        let (config, dir, out, shard) = try partitionsWithAShardRemoved("partition-unreadable")
        defer { try? fm.removeItem(atPath: dir) }
        try fm.createDirectory(atPath: "\(out)/\(shard)", withIntermediateDirectories: false)
        try Data("not ours".utf8).write(to: URL(fileURLWithPath: "\(out)/\(shard)/notes.txt"))
        let result = try Binary.run(["finalize", config, out] + shardSize)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("partition 2/3: \(shard): cannot read: Is a directory"), result.stderr)
        XCTAssertFalse(result.stderr.contains("is missing"), result.stderr)
        XCTAssertTrue(result.stderr.contains("--partition 2/3"), result.stderr)
        XCTAssertFalse(fm.fileExists(atPath: "\(out)/config.json"), "a failed finalize writes nothing")
        XCTAssertTrue(fm.fileExists(atPath: "\(out)/.mergegraph"), "a failed finalize keeps the ledgers")
        XCTAssertEqual(fm.contents(atPath: "\(out)/\(shard)/notes.txt"), Data("not ours".utf8), "the directory stays")
        // A named pipe in the shard's place is refused at once (opening it to read used to wait for a writer).
        try fm.removeItem(atPath: "\(out)/\(shard)")
        XCTAssertEqual(mkfifo("\(out)/\(shard)", 0o644), 0)
        let pipe = try Binary.run(["finalize", config, out] + shardSize, timeLimit: 60)
        XCTAssertEqual(pipe.status, 1, "finalize on a named pipe: \(pipe.status) \(pipe.stderr)")
        XCTAssertTrue(pipe.stderr.contains("partition 2/3: \(shard): cannot read: not a regular file"), pipe.stderr)
    }

    /// A worker that failed withdrew its shards and ledger, so finalize cannot tell it from one that never ran: it
    /// says the partition "has not run or did not finish", once (not once per shard), and to run or rerun it; with
    /// every worker failed (no ledger at all) it says the same of all partitions. Rerunning the partition repairs it.
    func testFinalizeAfterAFailedWorkerSaysItDidNotFinish() throws {
        let config = Fixtures.caseConfig("ties")
        let dir = Fixtures.temporaryDirectory("partition-unfinished")
        defer { try? fm.removeItem(atPath: dir) }
        let out = "\(dir)/out"
        for i in [1, 3] {
            let result = try Binary.run(["run", config, out, "--partition", "\(i)/3", "--quiet"] + shardSize)
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        let shard = try firstShard(of: "2/3", config)
        /// Runs `partition` into `out` with a folder in the way of `shard`, so that it fails; then removes the folder.
        func failBehindAFolder(_ out: String, partition: String) throws {
            try fm.createDirectory(atPath: "\(out)/\(shard)", withIntermediateDirectories: true)
            let failed = try Binary.run(["run", config, out, "--partition", partition, "--quiet"] + shardSize)
            XCTAssertEqual(failed.status, 1, failed.stderr)
            try fm.removeItem(atPath: "\(out)/\(shard)")
        }
        try failBehindAFolder(out, partition: "2/3")
        XCTAssertNil(try recorded(out, "partition-2-of-3"), "the failed worker withdrew its ledger")
        let finalize = try Binary.run(["finalize", config, out] + shardSize)
        XCTAssertEqual(finalize.status, 1, finalize.stderr)
        XCTAssertTrue(finalize.stderr.contains("cannot finalize: partition 2/3 has not run or did not finish; "
                                               + "run (or rerun) --partition 2/3 (mergegraph run CONFIG OUT --partition "
                                               + "I/N), then finalize again"), finalize.stderr)
        XCTAssertEqual(finalize.stderr.components(separatedBy: "has not run").count, 2, "said once, not per shard")
        XCTAssertFalse(fm.fileExists(atPath: "\(out)/config.json"), "a failed finalize writes nothing")
        let rerun = try Binary.run(["run", config, out, "--partition", "2/3", "--quiet"] + shardSize)
        XCTAssertEqual(rerun.status, 0, rerun.stderr)
        let repaired = try Binary.run(["finalize", config, out] + shardSize)
        XCTAssertEqual(repaired.status, 0, repaired.stderr)
        // The only worker fails: no ledger is left at all.
        let alone = "\(dir)/alone"
        try failBehindAFolder(alone, partition: "1/1")
        let none = try Binary.run(["finalize", config, alone] + shardSize)
        XCTAssertEqual(none.status, 1, none.stderr)
        XCTAssertTrue(none.stderr.contains("holds no partition ledgers (.mergegraph/partition-I-of-N.json): no partition "
                                           + "has run or finished; run (or rerun) mergegraph run CONFIG OUT --partition "
                                           + "I/N for every I, then finalize again"), none.stderr)
        XCTAssertFalse(fm.fileExists(atPath: "\(alone)/config.json"), "a failed finalize writes nothing")
    }

    /// The shards partition `stem` (`partition-I-of-N`) of `out` records in its ledger, nil when it has none.
    private func recorded(_ out: String, _ stem: String) throws -> [String: [String: AnyHashable]]? {
        guard let data = fm.contents(atPath: "\(out)/.mergegraph/\(stem).json") else { return nil }
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(json["shards"] as? [String: [String: AnyHashable]])
    }

    /// A worker that fails part way (here on a tensor whose bytes fail their CRC-32 check, after it has published the
    /// shards before it) withdraws what it did, as an ordinary run removes its partial output: the shards it
    /// published and its ledger (it left four shards, recorded in its ledger, which `finalize` and `--resume` would
    /// take for finished work). Workers beside it keep theirs: every file left in OUT is a ledger of a worker that
    /// succeeded or a shard such a ledger records.
    func testAFailedWorkerWithdrawsTheShardsItPublished() throws {
        let dir = Fixtures.temporaryDirectory("partition-failed")
        defer { try? fm.removeItem(atPath: dir) }
        // A tensor of the last layer: the shards before it are finished when its storage entry fails the check.
        let name = "model.layers.3.self_attn.q_proj.weight"
        _ = try Fixtures.damagedBinMerge(in: dir, tensor: name)
        let options = ["--quiet", "--out-shard-size", "20K"]
        let alone = try Binary.run(["run", "c.yml", "out", "--partition", "1/1"] + options, in: dir)
        XCTAssertEqual(alone.status, 1, alone.stderr)
        XCTAssertTrue(alone.stderr.contains("(the storage of tensor \(name)) fails its CRC-32 check"), alone.stderr)
        XCTAssertEqual(contents("\(dir)/out").keys.sorted(), [], "the failed worker left shards or its ledger")
        for count in 2...3 {
            let out = "\(dir)/out-\(count)"
            var failed = 0
            for i in 1...count {
                let result = try Binary.run(["run", "c.yml", out, "--partition", "\(i)/\(count)"] + options, in: dir)
                let stem = "partition-\(i)-of-\(count)"
                if result.status == 0 {
                    XCTAssertNotNil(try recorded(out, stem), "\(i)/\(count) succeeded but has no ledger")
                } else {
                    failed += 1
                    XCTAssertEqual(result.status, 1, result.stderr)
                    XCTAssertTrue(result.stderr.contains("fails its CRC-32 check"), result.stderr)
                    XCTAssertNil(try recorded(out, stem), "\(i)/\(count) failed but left its ledger")
                }
            }
            XCTAssertEqual(failed, 1, "one worker of \(count) reads the damaged tensor")
            var expected = Set<String>()
            for i in 1...count {
                let stem = "partition-\(i)-of-\(count)"
                guard let shards = try recorded(out, stem) else { continue }
                expected.insert(".mergegraph/\(stem).json")
                expected.formUnion(shards.keys)
            }
            XCTAssertEqual(contents(out).keys.sorted(), expected.sorted(), "\(count) workers")
        }
    }

    /// A worker without --overwrite refuses an OUT holding a finished model output and leaves it as it was (it
    /// used to publish its shards over the old model's, and withdraw them when it failed); with --overwrite it runs.
    func testAWorkerRefusesAFinishedOutputWithoutOverwrite() throws {
        let dir = Fixtures.temporaryDirectory("partition-finished")
        defer { try? fm.removeItem(atPath: dir) }
        try Fixtures.shardedLinearMerge(in: dir)
        let options = ["--quiet", "--out-shard-size", "20K"]
        let first = try Binary.run(["run", "c.yml", "out"] + options, in: dir)
        XCTAssertEqual(first.status, 0, first.stderr)
        let before = contents("\(dir)/out")
        XCTAssertGreaterThan(before.keys.filter { $0.hasSuffix(".safetensors") }.count, 1)
        let worker = try Binary.run(["run", "c.yml", "out", "--partition", "1/2"] + options, in: dir)
        XCTAssertEqual(worker.status, 1, worker.stderr)
        XCTAssertTrue(worker.stderr.contains("holds a finished model output ('config.json'); use --overwrite"),
                      worker.stderr)
        XCTAssertEqual(contents("\(dir)/out"), before, "the finished output changed")
        XCTAssertFalse(fm.fileExists(atPath: "\(dir)/out/.mergegraph"))
        let replacing = try Binary.run(["run", "c.yml", "out", "--partition", "1/2", "--overwrite"] + options, in: dir)
        XCTAssertEqual(replacing.status, 0, replacing.stderr)
    }

    /// Workers with --overwrite into an earlier output of more shards replace only the shards they write; finalize
    /// refuses to leave the earlier output's other shards beside the index (it used to finish with them there), and
    /// finishes once they are gone.
    func testFinalizeRefusesShardsOfAnEarlierOutput() throws {
        let dir = Fixtures.temporaryDirectory("partition-stale")
        defer { try? fm.removeItem(atPath: dir) }
        try Fixtures.shardedLinearMerge(in: dir)
        let first = try Binary.run(["run", "c.yml", "out", "--quiet", "--out-shard-size", "20K"], in: dir)
        XCTAssertEqual(first.status, 0, first.stderr)
        let options = ["--quiet", "--out-shard-size", "40K"]
        for i in 1...2 {
            let worker = try Binary.run(["run", "c.yml", "out", "--partition", "\(i)/2", "--overwrite"] + options, in: dir)
            XCTAssertEqual(worker.status, 0, worker.stderr)
        }
        let refused = try Binary.run(["finalize", "c.yml", "out", "--out-shard-size", "40K"], in: dir)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("-of-00010.safetensors and "), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("which this output does not have (an earlier output's); remove them"),
                      refused.stderr)
        for name in try fm.contentsOfDirectory(atPath: "\(dir)/out") where name.hasSuffix("-of-00010.safetensors") {
            try fm.removeItem(atPath: "\(dir)/out/\(name)")
        }
        let finished = try Binary.run(["finalize", "c.yml", "out", "--out-shard-size", "40K"], in: dir)
        XCTAssertEqual(finished.status, 0, finished.stderr)
        // Finalizing again finds the finished output, not "no partition has run".
        let again = try Binary.run(["finalize", "c.yml", "out", "--out-shard-size", "40K"], in: dir)
        XCTAssertEqual(again.status, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains("holds a finished model output ('config.json') and no partition ledgers: it "
                                            + "was finalized already, or written by an ordinary run"), again.stderr)
        let ordinary = try Binary.run(["run", "c.yml", "plain"] + options, in: dir)
        XCTAssertEqual(ordinary.status, 0, ordinary.stderr)
        let plain = contents("\(dir)/plain").filter { $0.key != "README.md" }
        XCTAssertEqual(contents("\(dir)/out").filter { $0.key != "README.md" }, plain)
    }

    /// A failed worker leaves `OUT/.mergegraph` empty; an ordinary run into that OUT takes it as empty (and removes
    /// the control directory), while a control directory holding a ledger still makes OUT not empty.
    func testAnOrdinaryRunTakesAnEmptyControlDirectoryAsEmpty() throws {
        let dir = Fixtures.temporaryDirectory("partition-leftover")
        defer { try? fm.removeItem(atPath: dir) }
        try Fixtures.shardedLinearMerge(in: dir)
        try fm.createDirectory(atPath: "\(dir)/out/.mergegraph", withIntermediateDirectories: true)
        let run = try Binary.run(["run", "c.yml", "out", "--quiet"], in: dir)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertFalse(fm.fileExists(atPath: "\(dir)/out/.mergegraph"), "the empty control directory stays")
        XCTAssertTrue(contents("\(dir)/out").keys.contains("config.json"))

        try fm.createDirectory(atPath: "\(dir)/ledger/.mergegraph", withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: "\(dir)/ledger/.mergegraph/partition-1-of-2.json"))
        // Partitions' work: refused with or without --overwrite, saying how to finish it or start over.
        for overwrite in [[], ["--overwrite"]] {
            let refused = try Binary.run(["run", "c.yml", "ledger", "--quiet"] + overwrite, in: dir)
            XCTAssertEqual(refused.status, 1, refused.stderr)
            XCTAssertTrue(refused.stderr.contains("holds the work of partitioned runs (.mergegraph/): finish it with "
                                                  + "mergegraph finalize CONFIG OUT"), refused.stderr)
            XCTAssertTrue(fm.fileExists(atPath: "\(dir)/ledger/.mergegraph/partition-1-of-2.json"))
        }
    }

    /// A resumed worker that fails keeps the shards it kept, recorded as they were, and withdraws only the shard it
    /// computed (it left that one published and recorded). The failure: the last shard cannot be renamed into
    /// place, a folder of its name being in the way (not ours: it stays).
    func testAFailedResumedWorkerKeepsWhatItKept() throws {
        let config = Fixtures.caseConfig("ties")
        let dir = Fixtures.temporaryDirectory("partition-failed-resume")
        defer { try? fm.removeItem(atPath: dir) }
        let out = "\(dir)/out"
        let first = try Binary.run(["run", config, out, "--partition", "1/1", "--quiet"] + shardSize)
        XCTAssertEqual(first.status, 0, first.stderr)
        let before = try XCTUnwrap(try recorded(out, "partition-1-of-1"))
        let names = before.keys.sorted()
        XCTAssertGreaterThan(names.count, 2, "several shards")
        guard let computed = names.first, let blocked = names.last else { return }
        try fm.removeItem(atPath: "\(out)/\(computed)")
        try fm.removeItem(atPath: "\(out)/\(blocked)")
        try fm.createDirectory(atPath: "\(out)/\(blocked)", withIntermediateDirectories: false)
        let kept = contents(out).filter { $0.key.hasSuffix(".safetensors") }
        let resumed = try Binary.run(["run", config, out, "--partition", "1/1", "--resume", "--quiet"] + shardSize)
        XCTAssertEqual(resumed.status, 1, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("\(blocked): cannot move the finished shard into place"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("\(names.count - 2) of \(names.count) shard(s) verified and kept"), resumed.stderr)
        XCTAssertFalse(fm.fileExists(atPath: "\(out)/\(computed)"), "the shard the failed run computed is withdrawn")
        XCTAssertTrue(fm.fileExists(atPath: "\(out)/\(blocked)"), "the folder in the way is not ours")
        XCTAssertEqual(try recorded(out, "partition-1-of-1"), before.filter { $0.key != computed && $0.key != blocked },
                       "the ledger records the kept shards, as before the run")
        let after = contents(out).filter { $0.key.hasSuffix(".safetensors") }
        XCTAssertEqual(after.keys.sorted(), kept.keys.sorted())
        for (name, data) in kept { XCTAssertTrue(after[name] == data, "kept shard \(name) changed") }
    }

    /// Too few file descriptors (`ulimit -n`): a worker that fails, wherever that is, leaves no file in OUT (its
    /// ledger was left when it failed opening its first shard).
    func testAWorkerOutOfFileDescriptorsLeavesNoFile() throws {
        let dir = Fixtures.temporaryDirectory("partition-fd")
        defer { try? fm.removeItem(atPath: dir) }
        try Fixtures.shardedLinearMerge(in: dir)
        var failed = 0, completed = 0
        for limit in 12...32 {
            let result = try Binary.run(["run", "c.yml", "out", "--partition", "1/1", "--quiet", "--out-shard-size", "20K"],
                                        in: dir, fileLimit: limit)
            if result.status == 0 {
                completed += 1
            } else {
                failed += 1
                XCTAssertEqual(result.status, 1, "ulimit -n \(limit): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains("Too many open files"), "ulimit -n \(limit): \(result.stderr)")
                XCTAssertEqual(contents("\(dir)/out").keys.sorted(), [], "ulimit -n \(limit) left files: \(result.stderr)")
            }
            try? fm.removeItem(atPath: "\(dir)/out")
        }
        XCTAssertGreaterThan(failed, 0, "no limit made the worker fail")
        XCTAssertGreaterThan(completed, 0, "no limit let the worker complete")
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
