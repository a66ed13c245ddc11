#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest

/// The output directory protocol, run through the binary: `--overwrite` never deletes inputs, the config, the working
/// directory or files a model output does not hold; one run at a time per `OUT_DIR`; signals remove the partial
/// output; stale partial directories of dead runs are swept.
final class OutputSafetyTests: XCTestCase {
    let fm = FileManager.default

    typealias Result = Binary.Result

    /// Runs the binary in `directory` and waits for it.
    func runBinary(_ arguments: [String], in directory: String) throws -> Result {
        try Binary.run(arguments, in: directory)
    }

    /// A scratch folder holding a copy of a fixture model (`a`) and a config merging it (`c.yml`).
    private func scratch() throws -> String {
        let dir = Fixtures.temporaryDirectory("safety")
        try fm.copyItem(atPath: "\(Fixtures.conformance)/models/llama-ft-a", toPath: "\(dir)/a")
        try "models:\n  - model: a\n    parameters: {weight: 1}\nmerge_method: linear\n"
            .write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        return dir
    }

    /// Every file under `dir` (relative paths, sorted) with its size.
    private func inventory(_ dir: String) -> [String] {
        (fm.subpaths(atPath: dir) ?? []).sorted().map { path in
            let size = (try? fm.attributesOfItem(atPath: "\(dir)/\(path)")[.size] as? Int) ?? -1
            return "\(path) \(size)"
        }
    }

    private func assertRefused(_ arguments: [String], in dir: String, containing phrase: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let before = inventory(dir)
        let result = try runBinary(arguments, in: dir)
        XCTAssertEqual(result.status, 1, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(phrase), "expected '\(phrase)' in: \(result.stderr)", file: file, line: line)
        XCTAssertEqual(inventory(dir), before, "a refused run changes nothing", file: file, line: line)
    }

    func testOverwriteRefusesTheWorkingDirectory() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        try assertRefused(["run", "c.yml", ".", "--overwrite"], in: dir, containing: "will not be replaced")
        // The config elsewhere: the working directory itself is still refused.
        try "models:\n  - model: \(dir)/a\n    parameters: {weight: 1}\nmerge_method: linear\n"
            .write(toFile: "\(dir)/c2.yml", atomically: true, encoding: .utf8)
        try fm.createDirectory(atPath: "\(dir)/work", withIntermediateDirectories: false)
        try "x".write(toFile: "\(dir)/work/notes.txt", atomically: true, encoding: .utf8)
        try assertRefused(["run", "../c2.yml", ".", "--overwrite"], in: "\(dir)/work",
                          containing: "is the working directory")
        try assertRefused(["run", "c2.yml", "work/..", "--overwrite"], in: dir, containing: "will not be replaced")
    }

    func testOverwriteRefusesInputsAndTheirNeighbourhood() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        try assertRefused(["run", "c.yml", "a", "--overwrite"], in: dir, containing: "is the input model directory")
        try fm.createSymbolicLink(atPath: "\(dir)/link", withDestinationPath: "\(dir)/a")
        try assertRefused(["run", "c.yml", "link", "--overwrite"], in: dir, containing: "is the input model directory")
        try fm.createDirectory(atPath: "\(dir)/a/sub", withIntermediateDirectories: false)
        try assertRefused(["run", "c.yml", "a/sub", "--overwrite"], in: dir, containing: "is inside the input model directory")
        try fm.removeItem(atPath: "\(dir)/a/sub")
        // A new folder inside an input is refused too, before anything is created there.
        for fresh in ["a/new", "a/new/deeper", "\(dir)/a/new"] {
            try assertRefused(["run", "c.yml", fresh], in: dir, containing: "is inside the input model directory")
            XCTAssertFalse(fm.fileExists(atPath: "\(dir)/a/new"), fresh)
        }
        // A folder holding the config (not the working directory).
        try fm.createDirectory(atPath: "\(dir)/conf", withIntermediateDirectories: false)
        try "models:\n  - model: \(dir)/a\n    parameters: {weight: 1}\nmerge_method: linear\n"
            .write(toFile: "\(dir)/conf/c.yml", atomically: true, encoding: .utf8)
        try assertRefused(["run", "c.yml", ".", "--overwrite"], in: "\(dir)/conf", containing: "contains the config file")
        try assertRefused(["run", "conf/c.yml", "conf", "--overwrite"], in: dir, containing: "contains the config file")
    }

    func testOverwriteReplacesOnlyAPreviousModelOutput() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        XCTAssertEqual(try runBinary(["run", "c.yml", "out", "--quiet"], in: dir).status, 0)
        try "x".write(toFile: "\(dir)/out/notes.txt", atomically: true, encoding: .utf8)
        try assertRefused(["run", "c.yml", "out", "--overwrite"], in: dir, containing: "holds 'notes.txt'")
        try fm.removeItem(atPath: "\(dir)/out/notes.txt")
        // Stage folders of --all-stages are replaced when they look like outputs themselves.
        try fm.createDirectory(atPath: "\(dir)/out/stage1", withIntermediateDirectories: false)
        try fm.copyItem(atPath: "\(dir)/out/config.json", toPath: "\(dir)/out/stage1/config.json")
        try "x".write(toFile: "\(dir)/out/stage1/train.log", atomically: true, encoding: .utf8)
        try assertRefused(["run", "c.yml", "out", "--overwrite"], in: dir, containing: "holds 'stage1/train.log'")
        try fm.removeItem(atPath: "\(dir)/out/stage1/train.log")
        // Without --overwrite a non-empty output is refused.
        try assertRefused(["run", "c.yml", "out"], in: dir, containing: "not empty (use --overwrite")
        // An old shard the new output does not have disappears with the old output; nothing is left beside it.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: "\(dir)/out/model-00002-of-00002.safetensors"))
        try "{}".write(toFile: "\(dir)/out/tokenizer.json", atomically: true, encoding: .utf8)
        let result = try runBinary(["run", "c.yml", "out", "--overwrite", "--quiet"], in: dir)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: "\(dir)/out").sorted(),
                       ["README.md", "config.json", "mergekit_config.yml", "model.safetensors"])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["a", "c.yml", "out"])
        XCTAssertEqual(try CheckpointComparison.problems(actual: "\(dir)/out", expected: "\(dir)/a"), [])
    }

    func testAParentThatIsAFileIsNamed() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        try "x".write(toFile: "\(dir)/file", atomically: true, encoding: .utf8)
        try assertRefused(["run", "c.yml", "file/deeper/out"], in: dir,
                          containing: "cannot create the output directory: \(dir)/file is a file, not a directory")
        try assertRefused(["run", "c.yml", "file"], in: dir, containing: "exists and is not a directory")
    }

    func testStalePartialOfADeadRunIsSwept() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        let dead = try deadPid()
        try fm.createDirectory(atPath: "\(dir)/.out.partial-\(dead)", withIntermediateDirectories: false)
        try Data([0]).write(to: URL(fileURLWithPath: "\(dir)/.out.partial-\(dead)/model.safetensors"))
        // Killed while writing its first shard ledger: only the ledger's temporary file (found by a trial run).
        let killed = try deadPid()
        try fm.createDirectory(atPath: "\(dir)/.out.partial-\(killed)", withIntermediateDirectories: false)
        try Data("{".utf8).write(to: URL(fileURLWithPath: "\(dir)/.out.partial-\(killed)/.mergegraph-shards.json.tmp"))
        // A partial-looking folder holding something else is never deleted.
        let other = try deadPid()
        try fm.createDirectory(atPath: "\(dir)/.out.partial-\(other)", withIntermediateDirectories: false)
        try "x".write(toFile: "\(dir)/.out.partial-\(other)/mine.txt", atomically: true, encoding: .utf8)
        let result = try runBinary(["run", "c.yml", "out", "--quiet"], in: dir)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), [".out.partial-\(other)", "a", "c.yml", "out"])
    }

    /// Standard output and error read by a reader that has gone (`| head`): the run still finishes its output and
    /// exits 0, leaving no partial directory or lock (killed by SIGPIPE, it left both behind and exited 141).
    func testAClosedPipeDoesNotStopTheRun() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        let process = Process()
        process.executableURL = CommandLineTests.binary
        process.arguments = ["run", "c.yml", "out", "--dump-ir"]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try pipe.fileHandleForReading.close()  // the reader is gone before the first write
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, "killed by signal \(process.terminationStatus)")
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertTrue(fm.fileExists(atPath: "\(dir)/out/model.safetensors"))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }, [])
    }

    /// The pid of a process that has exited.
    private func deadPid() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    // MARK: Runs that take a while

    /// Two models whose one f32 tensor is 512 MiB of zeros (sparse files: no disk used), slow enough to interrupt.
    private func slowScratch() throws -> String {
        let dir = Fixtures.temporaryDirectory("safety-slow")
        let rows = 16384, columns = 8192
        for name in ["a", "b"] {
            try fm.createDirectory(atPath: "\(dir)/\(name)", withIntermediateDirectories: false)
            try #"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1, "torch_dtype": "float32"}"#
                .write(toFile: "\(dir)/\(name)/config.json", atomically: true, encoding: .utf8)
            let bytes = rows * columns * 4
            var header = #"{"model.embed_tokens.weight":{"dtype":"F32","shape":[\#(rows),\#(columns)],"data_offsets":[0,\#(bytes)]},"model.norm.weight":{"dtype":"F32","shape":[\#(columns)],"data_offsets":[\#(bytes),\#(bytes + columns * 4)]}}"#
            while header.utf8.count % 8 != 0 { header += " " }
            var data = Data()
            withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: Array(header.utf8))
            let path = "\(dir)/\(name)/model.safetensors"
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertEqual(truncate(path, off_t(data.count + bytes + columns * 4)), 0)
        }
        try "models:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\nmerge_method: linear\n"
            .write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        return dir
    }

    /// Starts the binary without waiting; standard error goes to `dir/NAME.err`.
    private func start(_ arguments: [String], in dir: String, log: String) throws -> Process {
        let process = Process()
        process.executableURL = CommandLineTests.binary
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        fm.createFile(atPath: "\(dir)/\(log)", contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/\(log)"))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits until the run's first shard file exists in its partial directory (the lock is held, writing began).
    private func waitUntilWriting(_ process: Process, in dir: String) throws {
        let shard = "\(dir)/.out.partial-\(process.processIdentifier)/model.safetensors"
        let deadline = Date().addingTimeInterval(120)
        while !fm.fileExists(atPath: shard) {
            guard process.isRunning, Date() < deadline else {
                XCTFail("the run ended or took too long before it started writing")
                throw CocoaError(.fileNoSuchFile)
            }
            usleep(10_000)
        }
    }

    private func interruptRun(signal: Int32, expectedStatus: Int32) throws {
        let dir = try slowScratch()
        defer { try? fm.removeItem(atPath: dir) }
        let first = try start(["run", "c.yml", "out", "--max-memory", "64MiB", "--threads", "1", "--quiet"],
                              in: dir, log: "first.err")
        try waitUntilWriting(first, in: dir)
        // A second run into the same OUT_DIR fails at once, naming the holder.
        let second = try runBinary(["run", "c.yml", "out", "--overwrite", "--quiet"], in: dir)
        XCTAssertEqual(second.status, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("another mergegraph run (pid \(first.processIdentifier)) is writing"),
                      second.stderr)
        XCTAssertTrue(first.isRunning, "the first run outlasts the check")
        kill(first.processIdentifier, signal)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationReason, .exit)
        XCTAssertEqual(first.terminationStatus, expectedStatus)
        let messages = try String(contentsOfFile: "\(dir)/first.err", encoding: .utf8)
        XCTAssertTrue(messages.contains("interrupted"), messages)
        XCTAssertTrue(messages.contains(": the partial output was removed"), messages)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["a", "b", "c.yml", "first.err"],
                       "no partial directory, lock or output is left")
    }

    /// A `--partition` worker stopped by SIGTERM while writing a shard says that it removed that shard and kept
    /// what it published, for `--resume` (it used to say "the partial output was removed").
    func testAnInterruptedWorkerSaysItKeepsItsPublishedShards() throws {
        let dir = try slowScratch()
        defer { try? fm.removeItem(atPath: dir) }
        let worker = try start(["run", "c.yml", "out", "--partition", "1/1", "--max-memory", "64MiB", "--threads", "1",
                                "--quiet"], in: dir, log: "worker.err")
        let partial = "\(dir)/out/.mergegraph/partition-1-of-1.partial"
        let deadline = Date().addingTimeInterval(120)
        while ((try? fm.contentsOfDirectory(atPath: partial)) ?? []).isEmpty {
            guard worker.isRunning, Date() < deadline else { return XCTFail("the worker ended before it wrote a shard") }
            usleep(10_000)
        }
        kill(worker.processIdentifier, SIGTERM)
        worker.waitUntilExit()
        XCTAssertEqual(worker.terminationStatus, 143)
        let messages = try String(contentsOfFile: "\(dir)/worker.err", encoding: .utf8)
        XCTAssertTrue(messages.contains("interrupted (SIGTERM): partition 1/1's shard in progress was removed; the "
                                        + "shards it published are kept (rerun it with --resume)"), messages)
        XCTAssertFalse(messages.contains("the partial output was removed"), messages)
        XCTAssertFalse(fm.fileExists(atPath: partial), "the shard in progress stays")
    }

    func testSIGINTRemovesThePartialOutputAndExits130() throws {
        try interruptRun(signal: SIGINT, expectedStatus: 130)
    }

    func testSIGTERMRemovesThePartialOutputAndExits143() throws {
        try interruptRun(signal: SIGTERM, expectedStatus: 143)
    }

    /// Interrupted before any output exists (here while it waits to read its config from a named pipe), a run says
    /// it was interrupted and no more: there was no partial output to remove.
    func testAnInterruptBeforeAnyOutputDoesNotClaimARemoval() throws {
        let dir = Fixtures.temporaryDirectory("interrupt-early")
        defer { try? fm.removeItem(atPath: dir) }
        XCTAssertEqual(mkfifo("\(dir)/c.yml", 0o644), 0)
        let run = try start(["run", "c.yml", "out", "--quiet"], in: dir, log: "run.err")
        usleep(500_000)
        XCTAssertTrue(run.isRunning, "the run waits for its config")
        kill(run.processIdentifier, SIGTERM)
        run.waitUntilExit()
        XCTAssertEqual(run.terminationStatus, 143)
        let messages = try String(contentsOfFile: "\(dir)/run.err", encoding: .utf8)
        XCTAssertTrue(messages.contains("interrupted (SIGTERM)"), messages)
        XCTAssertFalse(messages.contains("partial output"), messages)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["c.yml", "run.err"])
    }
}
