import Checkpoint
import Foundation
import XCTest

/// Bad inputs that once crashed, wrote garbage with exit 0 or gave unclear messages, run through the binary.
final class FailureModeTests: XCTestCase {
    let fm = FileManager.default

    typealias Result = Binary.Result

    func run(_ arguments: [String], in directory: String = Fixtures.conformance) throws -> Result {
        try Binary.run(arguments, in: directory)
    }

    /// Runs `arguments` in a scratch folder holding `c.yml` (`config`) and a `models` link to the fixtures; asserts
    /// the run exits with `status` (1 for errors, 64 for usage errors), says `phrase` and leaves nothing behind.
    func assertFails(_ arguments: [String], config: String = "models:\n  - model: models/llama-ft-a\n    parameters: {weight: 1}\nmerge_method: linear\n",
                     status: Int32 = 1, containing phrase: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        try fm.createSymbolicLink(atPath: "\(dir)/models", withDestinationPath: "\(Fixtures.conformance)/models")
        try config.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        let result = try run(arguments, in: dir)
        XCTAssertEqual(result.status, status, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(phrase), "expected '\(phrase)' in: \(result.stderr)", file: file, line: line)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["c.yml", "models"], file: file, line: line)
    }

    // MARK: Crashes

    func testOverflowingShardSizesAreErrors() throws {
        for size in ["9223372037B", "9223372036854776M", "9223372036854776K", "99999999999999999999"] {
            try assertFails(["run", "c.yml", "out", "--out-shard-size", size], status: 64,
                            containing: "--out-shard-size: '\(size)' is too large")
        }
        try assertFails(["run", "c.yml", "out", "--out-shard-size", "5X"], status: 64,
                        containing: "--out-shard-size: '5X' is not a size like 5B")
        try assertFails(["run", "c.yml", "out", "--max-memory", "99999999999999999999TiB"], status: 64,
                        containing: "--max-memory: '99999999999999999999TiB' is too large")
    }

    func testDeeplyNestedConfigIsAPositionedError() throws {
        let deep = String(repeating: "[", count: 60_000) + String(repeating: "]", count: 60_000)
        try assertFails(["run", "c.yml", "out"], config: "merge_method: linear\njunk: \(deep)\n",
                        containing: "c.yml:2:")
        try assertFails(["run", "c.yml", "out"], config: "merge_method: linear\njunk: \(deep)\n",
                        containing: "nested more than 1000 levels deep")
    }

    // MARK: Garbage written with exit 0

    static let overflowingConfig = """
        models:
          - model: models/llama-ft-a
            parameters: {weight: 1000000}
          - model: models/llama-ft-b
            parameters: {weight: 1}
        merge_method: linear
        parameters: {normalize: false}
        dtype: float16
        """

    func testValuesThatOverflowTheOutputDTypeAreAnErrorNamingTheTensor() throws {
        try assertFails(["run", "c.yml", "out"], config: Self.overflowingConfig,
                        containing: "tensor \"model.embed_tokens.weight\": the merge produced infinite or NaN values "
                            + "although none of its inputs has any (a value beyond the range of the merge's or the "
                            + "output's dtype, e.g. past 65504 in float16, becomes infinite, whether an input's cast to "
                            + "the merge dtype or a result; use --allow-non-finite to write it anyway)")
        try assertFails(["run", "c.yml", "out"], config: Self.overflowingConfig.replacingOccurrences(of: "float16", with: "float32")
                            .replacingOccurrences(of: "1000000", with: "3.0e38"),
                        containing: "the merge produced infinite or NaN values")
    }

    func testAllowNonFiniteWritesThemAnyway() throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        try fm.createSymbolicLink(atPath: "\(dir)/models", withDestinationPath: "\(Fixtures.conformance)/models")
        try Self.overflowingConfig.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        let result = try run(["run", "c.yml", "out", "--allow-non-finite", "--quiet"], in: dir)
        XCTAssertEqual(result.status, 0, result.stderr)
        let model = try SafetensorsModel(directory: "\(dir)/out")
        let tensor = try XCTUnwrap(model.tensor("model.embed_tokens.weight"))
        var values = [Float](repeating: 0, count: tensor.shape.reduce(1, *))
        try values.withUnsafeMutableBufferPointer {
            try model.readFloats(tensor, elementOffset: 0, count: $0.count, into: $0.baseAddress!)
        }
        XCTAssertTrue(values.contains { $0.isInfinite })
    }

    /// An input may hold Inf or NaN on purpose; the outputs computed from it may then too.
    func testNonFiniteValuesAnInputHadAreWritten() throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        try fm.copyItem(atPath: "\(Fixtures.conformance)/models/llama-ft-a", toPath: "\(dir)/a")
        let path = "\(dir)/a/model.safetensors"
        let norm = try XCTUnwrap(try SafetensorsModel.readHeader(path: path).first { $0.name == "model.norm.weight" })
        XCTAssertEqual(norm.dtype, .f32)
        let file = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try file.seek(toOffset: UInt64(norm.fileOffset + 4))
        try file.write(contentsOf: withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian) { Data($0) })
        try file.close()
        try """
            models:
              - model: a
                parameters: {weight: 1}
              - model: \(Fixtures.conformance)/models/llama-ft-b
                parameters: {weight: 1}
            merge_method: linear
            """.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        let result = try run(["run", "c.yml", "out", "--quiet"], in: dir)
        XCTAssertEqual(result.status, 0, result.stderr)
        let model = try SafetensorsModel(directory: "\(dir)/out")
        let tensor = try XCTUnwrap(model.tensor("model.norm.weight"))
        var values = [Float](repeating: 0, count: tensor.shape.reduce(1, *))
        try values.withUnsafeMutableBufferPointer {
            try model.readFloats(tensor, elementOffset: 0, count: $0.count, into: $0.baseAddress!)
        }
        XCTAssertTrue(values[1].isInfinite)
    }

    /// One bit flipped inside a tensor's storage entry of a `.bin` (not in `data.pkl`, which opens as before): the
    /// run fails naming the file, the entry and a tensor of it, and leaves nothing behind.
    func testDamagedTensorBytesInABinFailTheirCRCCheck() throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        let name = "model.layers.1.mlp.down_proj.weight"
        let path = try Fixtures.damagedBinMerge(in: dir, tensor: name)
        for extra in [[], ["--out-shard-size", "20K"]] {
            let result = try run(["run", "c.yml", "out"] + extra, in: dir)
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("\(path) is not a readable torch.save archive: entry pytorch_model/data/"),
                          result.stderr)
            XCTAssertTrue(result.stderr.contains("(the storage of tensor \(name)) fails its CRC-32 check"), result.stderr)
            XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["c-bin", "c.yml"], "\(extra) left output behind")
        }
    }

    /// A named pipe in place of a model's weights file is refused at once, naming it, instead of the run waiting
    /// forever for a writer to open the pipe; nothing is left behind.
    func testANamedPipeInPlaceOfAWeightsFileIsRefused() throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        try fm.copyItem(atPath: "\(Fixtures.conformance)/models/llama-ft-a", toPath: "\(dir)/a")
        try fm.removeItem(atPath: "\(dir)/a/model.safetensors")
        XCTAssertEqual(mkfifo("\(dir)/a/model.safetensors", 0o644), 0)
        try """
            models:
              - model: \(Fixtures.conformance)/models/llama-ft-b
                parameters: {weight: 0.5}
              - model: a
                parameters: {weight: 0.5}
            merge_method: linear
            """.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        let result = try Binary.run(["run", "c.yml", "out"], in: dir, timeLimit: 60)
        XCTAssertEqual(result.status, 1, "a named pipe as weights: \(result.status) \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("\(dir)/a/model.safetensors"), result.stderr)
        XCTAssertTrue(result.stderr.contains("not a regular file"), result.stderr)
        XCTAssertFalse(fm.fileExists(atPath: "\(dir)/out"), "a refused run left output behind")
    }

    /// Too few file descriptors (`ulimit -n`): the run fails at whichever open comes first (an input shard, the
    /// output lock, a shard it writes, its ledger), exits 1 naming the file, and leaves nothing behind: no partial
    /// directory (which, holding a shard ledger, would pass for a killed run's), no lock. Every limit from one
    /// that stops at the inputs to one that completes.
    func testRunningOutOfFileDescriptorsLeavesNothingBehind() throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        try Fixtures.shardedLinearMerge(in: dir)
        var failuresWhileWriting = 0, completed = 0
        for extra in [["--out-shard-size", "20K"], []] {
            for limit in 12...32 {
                let result = try Binary.run(["run", "c.yml", "out", "--quiet"] + extra, in: dir, fileLimit: limit)
                if result.status == 0 {
                    completed += 1
                    try fm.removeItem(atPath: "\(dir)/out")
                } else {
                    XCTAssertEqual(result.status, 1, "ulimit -n \(limit) \(extra): \(result.stderr)")
                    XCTAssertTrue(result.stderr.contains("Too many open files"), "ulimit -n \(limit) \(extra): \(result.stderr)")
                    if result.stderr.contains("/.out.partial-") { failuresWhileWriting += 1 }
                }
                XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["c.yml", "models"],
                               "ulimit -n \(limit) \(extra) left something behind: \(result.stderr)")
                for name in try fm.contentsOfDirectory(atPath: dir) where name != "c.yml" && name != "models" {
                    try fm.removeItem(atPath: "\(dir)/\(name)")
                }
            }
        }
        // Fewer descriptors still: the run fails while it lists and opens the models, with the system's reason (a
        // model folder's listing said "NSCocoaErrorDomain error 256" at 4).
        for limit in 4...11 {
            let result = try Binary.run(["run", "c.yml", "out", "--quiet"], in: dir, fileLimit: limit)
            XCTAssertEqual(result.status, 1, "ulimit -n \(limit): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("Too many open files"), "ulimit -n \(limit): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("NSCocoaErrorDomain"), "ulimit -n \(limit): \(result.stderr)")
            XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["c.yml", "models"],
                           "ulimit -n \(limit) left something behind: \(result.stderr)")
        }
        XCTAssertGreaterThan(failuresWhileWriting, 0, "no limit made the run fail while it wrote its partial output")
        XCTAssertGreaterThan(completed, 0, "no limit let the run complete")
    }

    /// A model folder without `config.json` (weights only) is a compile-time error at the model's position naming
    /// the folder and the file, as mergekit 0.1.5 stops loading the model's config; as the base model too, and for
    /// `plan`. A LoRA adapter folder (`adapter_config.json`, no `config.json`) after `+` still merges.
    /// Damaged or mismatched inputs, each the second model of a linear merge: a weights file cut short, a header that
    /// is not JSON, an index naming a shard that is gone, a tensor of another shape, a tensor the first model has and
    /// this one lacks; and the model lacking a tensor listed first, in the decoder's layers, in a second layer stack
    /// (a vision tower) or after the layers (the final norm). Each stops `run` and `plan` at compile time with exit 1, the config position and the file,
    /// model or tensor at fault, and nothing written.
    func testDamagedOrMismatchedInputsArePositionedErrors() throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        let a = "\(Fixtures.conformance)/models/llama-ft-a"
        let weights = try Data(contentsOf: URL(fileURLWithPath: "\(a)/model.safetensors"))
        let headerLength = Int(weights.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: weights.subdata(in: 8..<(8 + headerLength)))
                                   as? [String: Any])
        let data = weights.suffix(from: 8 + headerLength)
        func model(_ name: String, weights: Data, index: String? = nil) throws -> String {
            let folder = "\(dir)/\(name)"
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: false)
            try fm.copyItem(atPath: "\(a)/config.json", toPath: "\(folder)/config.json")
            try weights.write(to: URL(fileURLWithPath: "\(folder)/\(index == nil ? "model.safetensors" : "model-00001-of-00002.safetensors")"))
            if let index { try index.write(toFile: "\(folder)/model.safetensors.index.json", atomically: true, encoding: .utf8) }
            return URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        }
        /// The weights with `header`, and zero f32 tensors `extra` of 4×4 elements after the original bytes.
        func safetensors(_ header: [String: Any], extra: [String] = []) throws -> Data {
            var header = header
            for (k, name) in extra.enumerated() {
                header[name] = ["dtype": "F32", "shape": [4, 4], "data_offsets": [data.count + 64 * k, data.count + 64 * (k + 1)]]
            }
            var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
            json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
            var length = UInt64(json.count).littleEndian
            return Data(bytes: &length, count: 8) + json + data + Data(count: 64 * extra.count)
        }
        let up = "model.layers.0.mlp.up_proj.weight"
        var transposed = header, lacking = header
        var entry = try XCTUnwrap(header[up] as? [String: Any])
        entry["shape"] = Array((entry["shape"] as? [Int] ?? []).reversed())
        transposed[up] = entry
        lacking[up] = nil
        // The bytes of the tensor the header no longer lists are kept: the header must tile the data, so a zero
        // tensor of that many bytes stands in under another name.
        entry["shape"] = [(entry["data_offsets"] as? [Int]).map { ($0[1] - $0[0]) / 4 } ?? 0]
        lacking["unused.padding"] = entry
        header["__metadata__"] = nil
        let names = header.keys.filter { $0 != up }.sorted()
        let cases: [(String, String)] = [
            ("cut", "\(try model("cut", weights: weights.prefix(100)))/model.safetensors is truncated or not a safetensors file"),
            ("notjson", "\(try model("notjson", weights: Data([9, 0, 0, 0, 0, 0, 0, 0]) + Data("{not json".utf8)))/model.safetensors is not a safetensors file: its header is not valid JSON"),
            ("shardless", "maps tensor \(up) to shard model-00002-of-00002.safetensors, which does not exist"),
            ("transposed", "shape mismatch for output tensor '\(up)'"),
            ("lacking", "tensor '\(up)' is missing from model 'lacking'"),
        ]
        let map = Dictionary(uniqueKeysWithValues: names.map { ($0, "model-00001-of-00002.safetensors") } + [(up, "model-00002-of-00002.safetensors")])
        _ = try model("shardless", weights: weights, index: String(decoding: try JSONSerialization.data(
            withJSONObject: ["metadata": [String: Any](), "weight_map": map], options: [.sortedKeys]), as: UTF8.self))
        _ = try model("transposed", weights: try safetensors(transposed))
        _ = try model("lacking", weights: try safetensors(lacking))
        // No final norm (its bytes kept under a buffer's name, which the layout leaves out).
        var normless = header
        normless["model.rotary_emb.inv_freq"] = normless.removeValue(forKey: "model.norm.weight")
        _ = try model("normless", weights: try safetensors(normless))
        // A second layer stack (a vision tower, merged whole beside the decoder): the first model lacks one of its
        // tensors in block 1 and has it in block 0.
        let tower = ["vision.blocks.0.w1.weight", "vision.blocks.0.w2.weight", "vision.blocks.1.w1.weight"]
        _ = try model("tower", weights: try safetensors(header, extra: tower + ["vision.blocks.1.w2.weight"]))
        _ = try model("towerless", weights: try safetensors(header, extra: tower))
        // The model lacking a tensor listed first: its names would have been the output's, without that tensor.
        let orders = cases.map { ([a, $0.0], $0.1) } + [
            (["lacking", a], "tensor '\(up)' is missing from model 'lacking'"),
            (["towerless", "tower"], "tensor 'vision.blocks.1.w2.weight' is missing from model 'towerless'"),
            (["normless", a], "tensor 'model.norm.weight' is missing from model 'normless'"),
            ([a, "normless"], "tensor 'model.norm.weight' is missing from model 'normless'"),
            (["tower", "towerless"], "tensor 'vision.blocks.1.w2.weight' is missing from model 'towerless'"),
        ]
        for (models, phrase) in orders {
            let name = models.joined(separator: " + ")
            try """
                models:
                  - model: \(models[0])
                    parameters: {weight: 0.5}
                  - model: \(models[1])
                    parameters: {weight: 0.5}
                merge_method: linear
                """.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
            for command in [["run", "c.yml", "out"], ["plan", "c.yml"]] {
                let result = try run(command, in: dir)
                XCTAssertEqual(result.status, 1, "\(name) \(command): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains("error: c.yml:"), "\(name) \(command): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains(phrase), "\(name) \(command): \(result.stderr)")
                XCTAssertFalse(fm.fileExists(atPath: "\(dir)/out"), "\(name): a refused run left output behind")
            }
        }
    }

    func testAModelFolderWithoutConfigJSONIsAnError() throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        try fm.createDirectory(atPath: "\(dir)/weights-only", withIntermediateDirectories: false)
        try fm.createSymbolicLink(atPath: "\(dir)/weights-only/model.safetensors",
                                  withDestinationPath: "\(Fixtures.conformance)/models/llama-ft-a/model.safetensors")
        let folder = URL(fileURLWithPath: "\(dir)/weights-only").resolvingSymlinksInPath().path
        let models = "\(Fixtures.conformance)/models"
        let cases = [
            ("models:\n  - model: \(models)/llama-ft-b\n    parameters: {weight: 1}\n  - model: weights-only\n    parameters: {weight: 1}\nmerge_method: linear\n",
             "c.yml:4:12: model 'weights-only': \(folder) has no config.json"),
            ("models:\n  - model: \(models)/llama-ft-b\n    parameters: {weight: 1, density: 0.5}\nbase_model: weights-only\nmerge_method: ties\n",
             "c.yml:4:13: model 'weights-only': \(folder) has no config.json"),
        ]
        for (config, phrase) in cases {
            try config.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
            for command in [["run", "c.yml", "out"], ["plan", "c.yml"]] {
                let result = try run(command, in: dir)
                XCTAssertEqual(result.status, 1, "\(command): \(result.stderr)")
                XCTAssertTrue(result.stderr.contains("error: \(phrase)"), "\(command): \(result.stderr)")
                XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir).sorted(), ["c.yml", "weights-only"])
            }
        }
        XCTAssertFalse(fm.fileExists(atPath: "\(models)/lora-a/config.json"))
        try """
            models:
              - model: \(models)/llama-base+\(models)/lora-a
                parameters: {weight: 0.5}
              - model: \(models)/llama-ft-a
                parameters: {weight: 0.5}
            merge_method: linear
            """.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        let adapted = try run(["run", "c.yml", "out", "--quiet"], in: dir)
        XCTAssertEqual(adapted.status, 0, adapted.stderr)
        XCTAssertTrue(fm.fileExists(atPath: "\(dir)/out/config.json"))
    }

    func testEmptyLayerRangeIsAnError() throws {
        try assertFails(["run", "c.yml", "out"], config: """
            slices:
              - sources:
                  - model: models/llama-ft-a
                    layer_range: [2, 2]
            merge_method: passthrough
            """, containing: "c.yml:4:22: layer_range [2, 2] selects no layers")
    }

    // MARK: Unclear messages

    func testNegativeThreadsSayWhatIsWrong() throws {
        try assertFails(["run", "c.yml", "out", "--threads", "-3"], status: 64, containing: "--threads must be at least 1 (got -3)")
        try assertFails(["run", "c.yml", "out", "-j", "-3"], status: 64, containing: "--threads must be at least 1 (got -3)")
        try assertFails(["run", "c.yml", "out", "--out-shard-size", "-5"], status: 64,
                        containing: "--out-shard-size: '-5' is not a size like 5B")
        // A count of bytes with a fraction (no unit) was taken as 1 byte.
        try assertFails(["run", "c.yml", "out", "--max-memory", "1.5"], status: 64,
                        containing: "--max-memory: '1.5' is not a size like 512MiB")
    }

    func testStageAndAllStagesTogetherAreRefused() throws {
        // `--all-stages` writes every named stage: a `--stage` beside it was ignored.
        for command in ["run", "plan"] {
            let arguments = command == "run" ? ["run", "c.yml", "out"] : ["plan", "c.yml"]
            try assertFails(arguments + ["--stage", "a", "--all-stages"], status: 64,
                            containing: "--stage a and --all-stages cannot be used together")
        }
    }

    func testMisspeltMethodSuggestsTheNearestOne() throws {
        try assertFails(["run", "c.yml", "out"], config: "models:\n  - model: models/llama-ft-a\n    parameters: {weight: 1}\nmerge_method: linaer\n",
                        containing: "c.yml:4:15: unknown merge method 'linaer' (did you mean 'linear'?)")
        try assertFails(["run", "c.yml", "out"], config: "models:\n  - model: models/llama-ft-a\nmerge_method: dare_tie\n",
                        containing: "unknown merge method 'dare_tie' (did you mean 'dare_ties'?)")
    }

    /// An output directory where nothing can be created (under `/proc`, whose root takes no new files) is named as
    /// the user gave it, not by the lock file the run tried to create beside it; a partitioned run, which creates the
    /// directory itself, names it with the system's reason (it said "The operation could not be completed. The file
    /// doesn't exist.").
    func testAnOutputDirectoryThatCannotBeCreatedIsNamed() throws {
        guard fm.fileExists(atPath: "/proc/self/status") else { throw XCTSkip("no /proc here") }
        let out = "/proc/mergegraph-test-out-\(getpid())"
        try assertFails(["run", "c.yml", out], containing: "error: \(out): cannot create the output directory")
        try assertFails(["run", "c.yml", out, "--out-shard-size", "20K"], containing: "error: \(out): ")
        guard mkdir(out, 0o777) != 0 else {
            rmdir(out)
            throw XCTSkip("\(out) can be created here")
        }
        let reason = String(cString: strerror(errno))
        try assertFails(["run", "c.yml", out, "--partition", "1/2"],
                        containing: "error: \(out): cannot create the output directory: \(reason)\n")
        XCTAssertFalse(fm.fileExists(atPath: out))
    }

    func testAParentThatIsAFileIsNotAFoundationErrorCode() throws {
        let dir = Fixtures.temporaryDirectory("failure")
        defer { try? fm.removeItem(atPath: dir) }
        try fm.createSymbolicLink(atPath: "\(dir)/models", withDestinationPath: "\(Fixtures.conformance)/models")
        try "models:\n  - model: models/llama-ft-a\n    parameters: {weight: 1}\nmerge_method: linear\n"
            .write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        try "x".write(toFile: "\(dir)/plain", atomically: true, encoding: .utf8)
        // A partitioned run creates the output directory itself; it said "(NSCocoaErrorDomain error 512.)".
        for extra in [[], ["--partition", "1/2"]] {
            let result = try run(["run", "c.yml", "plain/out"] + extra, in: dir)
            XCTAssertEqual(result.status, 1, "\(extra)")
            XCTAssertFalse(result.stderr.contains("NSCocoaErrorDomain"), "\(extra): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("error: \(dir)/plain/out: cannot create the output directory: \(dir)/plain is a file, not a directory"),
                          "\(extra): \(result.stderr)")
        }
        // The output directory itself a file: said as an ordinary run says it (it said "A file with the same name
        // already exists.").
        for extra in [[], ["--partition", "1/2"]] {
            let result = try run(["run", "c.yml", "plain"] + extra, in: dir)
            XCTAssertEqual(result.status, 1, "\(extra)")
            XCTAssertTrue(result.stderr.contains("error: \(dir)/plain: exists and is not a directory"), "\(extra): \(result.stderr)")
        }
    }
}
