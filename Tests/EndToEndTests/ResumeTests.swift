#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest

/// A run killed with SIGKILL leaves its finished shards, synced and recorded with their SHA-256, in its partial
/// directory; `--resume` verifies them, computes only the rest and gives the bytes of an uninterrupted run. Without
/// `--resume` a run leaves them alone (with a note) and removes them once it completes.
final class ResumeTests: XCTestCase {
    let fm = FileManager.default

    /// A base and two fine-tunes of six bf16 [256, 2048] matrices with varied values, and a TIES config of them:
    /// with 1 MB shards each matrix is a shard, and each takes long enough to be killed between two.
    private func scratch(method: String = "ties") throws -> String {
        let dir = Fixtures.temporaryDirectory("resume")
        for (name, seed) in [("base", 1), ("a", 2), ("b", 3)] {
            try fm.createDirectory(atPath: "\(dir)/\(name)", withIntermediateDirectories: false)
            try #"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": \#(Self.tensors), "torch_dtype": "bfloat16"}"#
                .write(toFile: "\(dir)/\(name)/config.json", atomically: true, encoding: .utf8)
            try Self.weights(seed: seed).write(to: URL(fileURLWithPath: "\(dir)/\(name)/model.safetensors"))
        }
        try """
            models:
              - model: a
                parameters: {weight: 0.6, density: 0.5}
              - model: b
                parameters: {weight: 0.4, density: 0.5}
            merge_method: \(method)
            base_model: base
            dtype: bfloat16
            """.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        return dir
    }

    private static let tensors = 6

    /// The safetensors bytes of a model of `scratch`: the same header for every seed, values drawn from `seed`.
    private static func weights(seed: Int) -> Data {
        let rows = 256, columns = 2048
        let bytes = rows * columns * 2
        var entries: [String] = []
        for t in 0..<tensors {
            entries.append(#""model.layers.\#(t).mlp.up_proj.weight":{"dtype":"BF16","shape":[\#(rows),\#(columns)],"data_offsets":[\#(t * bytes),\#((t + 1) * bytes)]}"#)
        }
        var header = "{" + entries.joined(separator: ",") + "}"
        while header.utf8.count % 8 != 0 { header += " " }
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15
        var values = [UInt16](repeating: 0, count: tensors * rows * columns)
        for i in values.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            // bf16 of a small float: exponent near 2^-7, a few mantissa bits, either sign.
            values[i] = UInt16(truncatingIfNeeded: 0x3C00 | (state >> 33) & 0x80FF)
        }
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    private let options = ["--out-shard-size", "1M", "--threads", "1", "--quiet", "--no-copy-tokenizer"]

    /// Every file of `dir` with its contents.
    private func contents(_ dir: String) -> [String: Data] {
        var result: [String: Data] = [:]
        for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] { result[name] = fm.contents(atPath: "\(dir)/\(name)") }
        return result
    }

    /// Starts a run into `out` and kills it with SIGKILL as soon as its ledger records `shards` shards; returns the
    /// partial directory it left.
    private func killedRun(in dir: String, after shards: Int, extra: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = Binary.binary
        process.arguments = ["run", "c.yml", "out"] + options + extra
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.environment = Binary.environment([:])
        process.standardError = FileHandle.nullDevice
        try process.run()
        let partial = "\(dir)/.out.partial-\(process.processIdentifier)"
        let ledger = "\(partial)/.mergegraph-shards.json"
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, process.isRunning {
            if let data = fm.contents(atPath: ledger),
               let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let recorded = json["shards"] as? [String: Any], recorded.count >= shards {
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(2000)
        }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal, "the run was killed before it finished")
        XCTAssertTrue(fm.fileExists(atPath: ledger), "the killed run's ledger is left")
        return partial
    }

    func testKilledRunResumesToTheSameBytes() throws {
        try killAndResume(method: "ties")
    }

    /// A randomized method's streams are keyed by tensor, not by time: the resumed run's shards are the same bytes.
    func testKilledRandomizedRunResumesToTheSameBytes() throws {
        try killAndResume(method: "dare_ties")
    }

    private func killAndResume(method: String) throws {
        let dir = try scratch(method: method)
        defer { try? fm.removeItem(atPath: dir) }
        // In a folder of the same name: the model card is titled after it.
        let reference = try Binary.run(["run", "c.yml", "reference/out"] + options, in: dir)
        XCTAssertEqual(reference.status, 0, reference.stderr)
        XCTAssertEqual(contents("\(dir)/reference/out").keys.filter { $0.hasSuffix(".safetensors") }.count, 6)

        let partial = try killedRun(in: dir, after: 2)
        // A damaged recorded shard is not trusted: it is computed again.
        let shards = try fm.contentsOfDirectory(atPath: partial).filter { $0.hasSuffix(".safetensors") }.sorted()
        let victim = "\(partial)/\(shards[0])"
        var bytes = try XCTUnwrap(fm.contents(atPath: victim))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: victim))

        let resumed = try Binary.run(["run", "c.yml", "out", "--resume"] + options, in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("shard(s) verified and kept"), resumed.stderr)
        XCTAssertFalse(resumed.stderr.contains(": 0 of 6"), "the undamaged shards are kept: \(resumed.stderr)")
        // The damaged shard is named, once, on a line of its own, with what happens to it.
        let named = resumed.stderr.split(separator: "\n").filter { $0.contains(shards[0]) }
        XCTAssertEqual(named.count, 1, resumed.stderr)
        XCTAssertTrue(named.first?.contains("\(shards[0]) of \(URL(fileURLWithPath: dir).resolvingSymlinksInPath().path)/out") == true
                          || named.first?.contains("\(shards[0]) of \(dir)/out") == true, resumed.stderr)
        XCTAssertTrue(named.first?.contains("fails its SHA-256 check") == true, resumed.stderr)
        XCTAssertTrue(named.first?.contains("it will be recomputed") == true, resumed.stderr)
        XCTAssertFalse(shards.dropFirst().contains { resumed.stderr.contains($0) }, "only the damaged shard is named: \(resumed.stderr)")
        let out = contents("\(dir)/out"), expected = contents("\(dir)/reference/out")
        XCTAssertEqual(out.keys.sorted(), expected.keys.sorted())
        for (name, data) in expected { XCTAssertTrue(out[name] == data, "\(name) differs from the uninterrupted run's") }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["a", "b", "base", "c.yml", "out", "reference"],
                       "nothing partial is left")
    }

    /// An input replaced, after the run was killed, by other bytes of the same size and modification time is a
    /// changed input: the resumed run keeps none of the killed run's shards and gives the bytes of a fresh run on the
    /// new input. Both ways such a file comes about: rewritten in place, same inode (`cp -p`), and a new file renamed
    /// over it (`rsync -a`).
    func testInputReplacedWithTheSameSizeAndModificationTimeIsNotResumed() throws {
        for inPlace in [true, false] {
            let dir = try scratch()
            defer { try? fm.removeItem(atPath: dir) }
            _ = try killedRun(in: dir, after: 2)

            let path = "\(dir)/a/model.safetensors"
            var old = stat()
            XCTAssertEqual(stat(path, &old), 0)
            let replacement = inPlace ? path : path + ".new"
            let fd = open(replacement, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            XCTAssertGreaterThanOrEqual(fd, 0)
            let data = Self.weights(seed: 4)
            XCTAssertEqual(data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, data.count)
            close(fd)
            let times = [old.st_atim, old.st_mtim]
            XCTAssertEqual(utimensat(AT_FDCWD, replacement, times, 0), 0, String(cString: strerror(errno)))
            if !inPlace { XCTAssertEqual(rename(replacement, path), 0) }
            var new = stat()
            XCTAssertEqual(stat(path, &new), 0)
            XCTAssertEqual(new.st_size, old.st_size)
            XCTAssertEqual(new.st_mtim.tv_sec, old.st_mtim.tv_sec)
            XCTAssertEqual(new.st_mtim.tv_nsec, old.st_mtim.tv_nsec)
            XCTAssertEqual(new.st_ino == old.st_ino, inPlace)

            let reference = try Binary.run(["run", "c.yml", "reference/out"] + options, in: dir)
            XCTAssertEqual(reference.status, 0, reference.stderr)
            let resumed = try Binary.run(["run", "c.yml", "out", "--resume"] + options, in: dir)
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertTrue(resumed.stderr.contains("made by a different plan"), "in place \(inPlace): \(resumed.stderr)")
            let out = contents("\(dir)/out"), expected = contents("\(dir)/reference/out")
            XCTAssertEqual(out.keys.sorted(), expected.keys.sorted())
            for (name, data) in expected {
                XCTAssertTrue(out[name] == data, "in place \(inPlace): \(name) differs from a fresh run's on the new input")
            }
            XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["a", "b", "base", "c.yml", "out", "reference"],
                           "nothing partial is left")
        }
    }

    func testRunWithoutResumeLeavesTheKilledRunsShardsUntilItCompletes() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        let partial = try killedRun(in: dir, after: 1)
        // A plan that differs (another shard size) cannot resume it.
        let other = try Binary.run(["run", "c.yml", "elsewhere", "--resume", "--out-shard-size", "3M", "--quiet"], in: dir)
        XCTAssertEqual(other.status, 0, other.stderr)
        XCTAssertTrue(fm.fileExists(atPath: partial), "a run into another directory leaves it")
        let plain = try Binary.run(["run", "c.yml", "out"] + options, in: dir)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.stderr.contains("run again with --resume to continue it"), plain.stderr)
        XCTAssertFalse(fm.fileExists(atPath: partial), "the completed run removes what the killed one left")
        let again = try killedRun(in: dir, after: 1, extra: ["--overwrite"])
        let mismatched = try Binary.run(["run", "c.yml", "out", "--overwrite", "--resume", "--out-shard-size", "3M", "--quiet"], in: dir)
        XCTAssertEqual(mismatched.status, 0, mismatched.stderr)
        XCTAssertTrue(mismatched.stderr.contains("made by a different plan"), mismatched.stderr)
        XCTAssertFalse(fm.fileExists(atPath: again))
    }
}
