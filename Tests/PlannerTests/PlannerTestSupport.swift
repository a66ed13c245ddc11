import Foundation
import XCTest
import Checkpoint
import IR
import Parser
@testable import Planner

/// The file name every in-memory test config is parsed under.
let testFile = "t.yml"

/// A location in `t.yml`.
func loc(_ line: Int, _ column: Int) -> SourceLocation {
    SourceLocation(file: testFile, line: line, column: column)
}

struct FakeCatalogError: Error, CustomStringConvertible {
    var description: String
}

/// An in-memory `CheckpointCatalog`: each registered path answers with a made-up checkpoint; no file is touched.
final class FakeCatalog: CheckpointCatalog {
    var checkpoints: [String: CheckpointInfo] = [:]
    /// Paths that are directories without a checkpoint (the catalog's answer for them is an error).
    var emptyDirectories: Set<String> = []
    /// Every path the planner asked about, in order.
    private(set) var requests: [String] = []

    func hasCheckpointDirectory(at path: String) -> Bool {
        checkpoints[path] != nil || emptyDirectories.contains(path)
    }

    func checkpoint(at path: String) throws -> CheckpointInfo {
        requests.append(path)
        guard let info = checkpoints[path] else { throw FakeCatalogError(description: "fake catalog has no checkpoint at \(path)") }
        return info
    }
}

/// A made-up Llama-like model: sizes are tiny so byte counts are easy to compute by hand.
struct FakeModel {
    var layers: Int
    var hidden = 4
    var vocab = 8
    var dtype: DType = .f32
    /// Tensors left out of the checkpoint.
    var drop: Set<String> = []
    /// Shapes that differ from the default.
    var shapes: [String: [Int]] = [:]
    /// Dtypes that differ from `dtype`.
    var dtypes: [String: DType] = [:]
    var configJSON: String?
    /// Tensors in file order, in place of the default Llama-like ones.
    var customTensors: [(String, [Int])]?

    init(layers: Int, dtype: DType = .f32) {
        self.layers = layers
        self.dtype = dtype
    }

    /// Tensor names in file order with default shapes.
    var defaultTensors: [(String, [Int])] {
        var result: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, hidden])]
        for i in 0..<layers {
            result.append(("model.layers.\(i).self_attn.q_proj.weight", [hidden, hidden]))
            result.append(("model.layers.\(i).mlp.up_proj.weight", [2 * hidden, hidden]))
            result.append(("model.layers.\(i).input_layernorm.weight", [hidden]))
        }
        result.append(("model.norm.weight", [hidden]))
        result.append(("lm_head.weight", [vocab, hidden]))
        return result
    }

    func info(resolvedPath: String) -> CheckpointInfo {
        var names: [String] = []
        var tensors: [String: TensorInfo] = [:]
        for (name, shape) in customTensors ?? defaultTensors where !drop.contains(name) {
            names.append(name)
            tensors[name] = TensorInfo(name: name, type: TensorType(dtype: dtypes[name] ?? dtype, shape: shapes[name] ?? shape))
        }
        let config = configJSON ?? """
            {
              "architectures": ["LlamaForCausalLM"],
              "hidden_size": \(hidden),
              "num_attention_heads": 2,
              "num_hidden_layers": \(layers),
              "torch_dtype": "\(dtype.torchName)",
              "vocab_size": \(vocab)
            }
            """
        return CheckpointInfo(resolvedPath: resolvedPath, tensorNames: names, tensors: tensors,
                              configJSON: Array(config.utf8))
    }
}

/// Model directories that exist only in a fake catalog (under a root that is not on disk), and helpers to
/// compile configs that name them as `$A`, `$B`, ….
final class PlannerFixture {
    let root = URL(fileURLWithPath: "/nonexistent/mergegraph-planner-tests-\(UUID().uuidString)", isDirectory: true)
    let catalog = FakeCatalog()
    private var paths: [String: String] = [:]

    /// Registers directory `key` (lower-cased) under `root` with `model` in the catalog; returns its absolute path.
    @discardableResult
    func add(_ key: String, _ model: FakeModel, resolvedPath: String? = nil) -> String {
        let dir = root.appendingPathComponent(key.lowercased(), isDirectory: true)
        let path = dir.path
        paths[key] = path
        catalog.checkpoints[path] = model.info(resolvedPath: resolvedPath ?? path)
        return path
    }

    func path(_ key: String) -> String { paths[key]! }

    /// Replaces `$KEY` with the absolute path of model KEY (longest keys first).
    func expand(_ yaml: String) -> String {
        var text = yaml
        for key in paths.keys.sorted(by: { $0.count > $1.count }) {
            text = text.replacingOccurrences(of: "$" + key, with: paths[key]!)
        }
        return text
    }

    func parse(_ yaml: String) throws -> ConfigFile {
        try ConfigParser.parse(text: expand(yaml), file: testFile)
    }

    func compile(_ yaml: String, stage: String? = nil, shardSize: Int = 5_000_000_000) throws -> Plan {
        try Compiler.compile(parse(yaml), catalog: catalog, costs: testCosts, options: PlannerOptions(outShardSize: shardSize, stage: stage))
    }

    /// Compiles `yaml`, expecting a planner error; returns its message ("" after recording a failure).
    func compileError(_ yaml: String, stage: String? = nil,
                      file: StaticString = #filePath, line: UInt = #line) -> String {
        let config: ConfigFile
        do {
            config = try parse(yaml)
        } catch {
            XCTFail("config does not parse: \(error)", file: file, line: line)
            return ""
        }
        do {
            let plan = try Compiler.compile(config, catalog: catalog, costs: testCosts, options: PlannerOptions(stage: stage))
            XCTFail("expected a planner error, compiled \(plan.graph.outputs.count) outputs", file: file, line: line)
            return ""
        } catch {
            return error.description
        }
    }

    /// Asserts that compiling fails with a message starting with `prefix` and containing every phrase.
    func assertError(_ yaml: String, prefix: String, contains phrases: [String], stage: String? = nil,
                     file: StaticString = #filePath, line: UInt = #line) {
        let message = compileError(yaml, stage: stage, file: file, line: line)
        guard !message.isEmpty else { return }
        XCTAssertTrue(message.hasPrefix(prefix), "'\(message)' does not start with '\(prefix)'", file: file, line: line)
        for phrase in phrases {
            XCTAssertTrue(message.contains(expand(phrase)), "'\(message)' does not contain '\(expand(phrase))'",
                          file: file, line: line)
        }
    }
}

extension Plan {
    /// The value written for output `name`.
    func value(of name: String, file: StaticString = #filePath, line: UInt = #line) throws -> ValueID {
        try XCTUnwrap(graph.outputs.first { $0.name == name }?.value, "no output '\(name)'", file: file, line: line)
    }

    /// The node written for output `name`.
    func node(of name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Node {
        graph[try value(of: name, file: file, line: line)]
    }

    var outputNames: [String] { graph.outputs.map(\.name) }

    /// The output written to OUT_DIR itself.
    var mainTarget: OutputTarget? { targets.first { $0.directory.isEmpty } }

    /// The (model index, tensor) a value loads, or nil when it is not a load.
    func load(_ v: ValueID) -> (model: Int, tensor: String)? {
        if case .load(let m, let t) = graph[v].op { return (m, t) }
        return nil
    }

    /// How many load nodes the graph has.
    var loadCount: Int {
        graph.nodes.filter { if case .load = $0.op { return true } else { return false } }.count
    }
}

extension OutputTarget {
    /// `config` parsed back into JSON (nil when there is none or it does not parse, which a test then reports).
    var configJSON: JSONValue? {
        guard let config else { return nil }
        do {
            return try JSONParser.parse(Array(config.utf8))
        } catch {
            XCTFail("the planner wrote config.json text that is not JSON: \(error)")
            return nil
        }
    }
}

/// A test case with a fresh `PlannerFixture` per test.
class PlannerTestCase: XCTestCase {
    var fx: PlannerFixture!

    override func setUp() {
        super.setUp()
        fx = PlannerFixture()
    }

    override func tearDown() {
        fx = nil
        super.tearDown()
    }
}

/// The layer tensors of a fake model, in file order.
func layerTensors(_ i: Int) -> [String] {
    ["model.layers.\(i).self_attn.q_proj.weight", "model.layers.\(i).mlp.up_proj.weight",
     "model.layers.\(i).input_layernorm.weight"]
}

/// The output names of a fake model with `layers` layers.
func llamaNames(layers: Int) -> [String] {
    ["model.embed_tokens.weight"] + (0..<layers).flatMap(layerTensors) + ["model.norm.weight", "lm_head.weight"]
}

/// Checks every invariant the executor relies on: each reachable value computed once with its operands first,
/// freed once at its last use, outputs written once after their value.
func assertValidSchedule(_ graph: Graph, _ schedule: Schedule, file: StaticString = #filePath, line: UInt = #line) {
    var stepOf: [ValueID: Int] = [:]
    for (i, step) in schedule.steps.enumerated() {
        XCTAssertNil(stepOf[step.value], "\(step.value) computed twice", file: file, line: line)
        stepOf[step.value] = i
        for operand in graph[step.value].operands {
            guard let j = stepOf[operand] else {
                XCTFail("\(step.value) uses \(operand) before it is computed", file: file, line: line)
                continue
            }
            XCTAssertLessThan(j, i, file: file, line: line)
        }
    }
    // Reachable values: exactly the computed ones.
    var reachable = Set<ValueID>()
    var stack = graph.outputs.map(\.value)
    while let v = stack.popLast() {
        if reachable.insert(v).inserted { stack += graph[v].operands }
    }
    XCTAssertEqual(Set(stepOf.keys), reachable, "computed values differ from values reachable from outputs",
                   file: file, line: line)

    // Writes: each output exactly once, after its value, in shard order.
    var writeOrder: [Int] = []
    var lastUse: [ValueID: Int] = [:]
    for (i, step) in schedule.steps.enumerated() {
        lastUse[step.value] = max(lastUse[step.value] ?? i, i)
        for operand in graph[step.value].operands { lastUse[operand] = i }
        for o in step.writes {
            writeOrder.append(o)
            let v = graph.outputs[o].value
            if let computed = stepOf[v] {
                XCTAssertLessThanOrEqual(computed, i, "output \(o) written before its value", file: file, line: line)
            }
            lastUse[v] = i
        }
    }
    XCTAssertEqual(writeOrder.sorted(), Array(graph.outputs.indices), "every output must be written once",
                   file: file, line: line)

    // Frees: each computed value exactly once, at its last use.
    var freedAt: [ValueID: Int] = [:]
    for (i, step) in schedule.steps.enumerated() {
        for v in step.frees {
            XCTAssertNil(freedAt[v], "\(v) freed twice", file: file, line: line)
            freedAt[v] = i
        }
    }
    XCTAssertEqual(freedAt, lastUse, "values must be freed exactly at their last use", file: file, line: line)
}

/// Kernel costs for planner tests, independent of the executor: loads stage their stored dtype; ops that take
/// statistics passes in the executor take them here too, with small fixed state (100 bytes per pass, 10 after).
struct TestCostModel: CostModel {
    /// As safetensors' writer: 3 MiB of conversion buffers per open shard.
    let bytesPerOpenShard = 3 << 20

    func cost(of op: Op, result: TensorType, operands: [TensorType], threads: Int) -> KernelCost {
        switch op {
        case .load: return KernelCost(stagingBytesPerElement: result.dtype.byteSize)
        case .magnitudePrune(let keep, _, _):
            return keep.isEmpty || keep.count == result.elementCount ? KernelCost()
                : KernelCost(passBytes: [100, 100], sweepBytes: 10)
        case .slerp, .varianceTopK, .sceMerge, .sceElectMerge, .multislerp, .karcher, .arceeFusion, .ramPlusMerge:
            return KernelCost(initialBytes: 100, passBytes: [100])
        case .modelStock(let filterWise): return filterWise ? KernelCost() : KernelCost(initialBytes: 100, passBytes: [100])
        case .randomPrune(_, let rescale, _, _): return rescale ? KernelCost(initialBytes: 100, passBytes: [100]) : KernelCost()
        case .dellaPrune(_, _, let rescale, _, _):
            return rescale ? KernelCost(initialBytes: 100, passBytes: [100], sweepBytes: 10) : .constant(10)
        default: return KernelCost()
        }
    }
}

/// The cost model planner tests schedule with.
let testCosts = TestCostModel()
