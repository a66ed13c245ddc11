import Checkpoint
import Executor
import Foundation
import IR
import Parser
import Planner

/// Paths of the shipped conformance fixtures and helpers to run a case in-process.
enum Fixtures {
    static let conformance = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/conformance").path

    /// PEFT adapters for conformance models and what mergekit 0.1.5 makes of them (`make_fixtures.py`).
    static let lora = URL(fileURLWithPath: conformance).deletingLastPathComponent().appendingPathComponent("lora").path
    /// The tokenizer cases (`Tests/Fixtures/tokenizer`: mergekit 0.1.5's outputs for tokenizer settings, over the
    /// conformance models and models of their own).
    static let tokenizer = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer").path

    static func caseConfig(_ name: String) -> String { "cases/\(name)/config.yml" }
    static func expected(_ name: String, in folder: String = conformance) -> String { "\(folder)/cases/\(name)/expected" }

    /// Every case of the tokenizer fixtures, by folder name.
    static var tokenizerCaseNames: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(tokenizer)/cases")) ?? []).sorted()
    }

    /// The merged shard at `path` with the config's SHA-256 in its metadata blanked (`mergegraph_config_sha256`):
    /// it tells configs apart by design (provenance), so outputs of equivalent configs (a Hub id and a local path,
    /// `legacy` and its YAML, parameters at another level) compare equal on everything else.
    static func shardBytes(_ path: String) throws -> Data {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let key = Data(#""mergegraph_config_sha256":""#.utf8)
        guard let found = data.range(of: key), found.upperBound + 64 <= data.count else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path + " records no config hash"])
        }
        data.replaceSubrange(found.upperBound..<(found.upperBound + 64), with: Data(repeating: UInt8(ascii: "0"), count: 64))
        return data
    }

    /// Copies the `.bin` fine-tune `llama-ft-c-bin` to `dir/c-bin` with one bit flipped inside the storage of tensor
    /// `name` (the lowest byte of an element in the middle: a value changed in its last mantissa bits, so only the
    /// storage entry's CRC-32 tells), and writes `dir/c.yml`, a float16 linear merge of it with `llama-ft-a`.
    /// Returns the damaged `pytorch_model.bin`'s path.
    static func damagedBinMerge(in dir: String, tensor name: String) throws -> String {
        let fm = FileManager.default
        try fm.copyItem(atPath: "\(conformance)/models/llama-ft-c-bin", toPath: "\(dir)/c-bin")
        let path = "\(dir)/c-bin/pytorch_model.bin"
        guard let tensor = try PyTorchModel(directory: "\(dir)/c-bin").tensor(name),
              var bytes = fm.contents(atPath: path) else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        bytes[tensor.fileOffset + tensor.byteCount / 2 / 4 * 4] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        try """
            models:
              - model: \(conformance)/models/llama-ft-a
                parameters: {weight: 0.5}
              - model: c-bin
                parameters: {weight: 0.5}
            merge_method: linear
            dtype: float16
            """.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
        return path
    }

    /// Links the conformance models at `dir/models` and writes `dir/c.yml`, a linear merge of a one-file model and a
    /// sharded one (each a file to open: for runs under a file-descriptor limit).
    static func shardedLinearMerge(in dir: String) throws {
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/models", withDestinationPath: "\(conformance)/models")
        try """
            models:
              - model: models/llama-ft-a
                parameters: {weight: 1}
              - model: models/llama-ft-b-sharded
                parameters: {weight: 1}
            merge_method: linear
            """.write(toFile: "\(dir)/c.yml", atomically: true, encoding: .utf8)
    }

    /// A fresh empty directory under the system temporary directory.
    static func temporaryDirectory(_ label: String) -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("mergegraph-\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Compiles and runs config text (model paths relative to `folder`, the conformance folder by default) into
    /// `output`. Returns the plan and the most memory the executor held.
    @discardableResult
    static func merge(configText: String, file: String = "inline.yml", into output: String, threads: Int = 2,
                      seed: UInt64 = 0, limits: Scheduler.Limits? = nil, in folder: String = conformance,
                      loraMergeDType: DType? = nil) throws -> (plan: Plan, peakBytes: Int) {
        try inFolder(folder) {
            let catalog = LocalCheckpointCatalog()
            var options = PlannerOptions(randomSeed: seed, limits: limits ?? Scheduler.Limits(threads: threads))
            options.loraMergeDType = loraMergeDType
            let plan = try Compiler.compile(try ConfigParser.parse(text: configText, file: file), catalog: catalog, costs: StreamingCostModel(),
                                           options: options)
            let executor = PlanExecutor(plan: plan, catalog: catalog,
                                        options: ExecutionOptions(overwrite: true))
            try executor.run(outputDirectory: output)
            return (plan, executor.memory.peakBytes)
        }
    }

    /// Compiles and runs a case of `folder` (the conformance cases by default) into `output`.
    @discardableResult
    static func merge(case name: String, into output: String, threads: Int = 2,
                      limits: Scheduler.Limits? = nil, in folder: String = conformance) throws -> (plan: Plan, peakBytes: Int) {
        let text = try String(contentsOfFile: "\(folder)/\(caseConfig(name))", encoding: .utf8)
        return try merge(configText: text, file: caseConfig(name), into: output, threads: threads, limits: limits, in: folder)
    }

    /// Every conformance case, by folder name.
    static var caseNames: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(conformance)/cases")) ?? []).sorted()
    }

    static func inConformanceFolder<T>(_ body: () throws -> T) throws -> T {
        try inFolder(conformance, body)
    }

    /// Runs `body` with `folder` as the working directory.
    static func inFolder<T>(_ folder: String, _ body: () throws -> T) throws -> T {
        let fm = FileManager.default
        let previous = fm.currentDirectoryPath
        _ = fm.changeCurrentDirectoryPath(folder)
        defer { _ = fm.changeCurrentDirectoryPath(previous) }
        return try body()
    }
}

extension Fixtures {
    /// Compiles config text with `folder` (the conformance folder by default) as working directory.
    static func compile(_ configText: String, file: String = "chain.yml", options: PlannerOptions = PlannerOptions(),
                        in folder: String = conformance) throws -> Plan {
        try inFolder(folder) {
            try Compiler.compile(try ConfigParser.parse(text: configText, file: file), catalog: LocalCheckpointCatalog(), costs: StreamingCostModel(), options: options)
        }
    }
}
