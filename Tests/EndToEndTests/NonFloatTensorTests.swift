import Checkpoint
import Executor
import Foundation
import IR
import Planner
import XCTest

/// Integer and BOOL tensors are copied byte for byte from the first input (mergekit `copy_non_floating_buffer`),
/// whatever the method and `dtype`, within the predicted memory; inputs that disagree stop the run with the tensor's name.
final class NonFloatTensorTests: XCTestCase {
    /// Little-endian bytes of `values`.
    private func bytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    /// A model directory with an f32 `w`, a BOOL mask, int64 ids (beyond f32's exact range) and an int32 scalar.
    private func makeModel(weights: [Float], mask: [UInt8], ids: [Int64], maskDType: DType = .bool) throws -> String {
        let directory = Fixtures.temporaryDirectory("nonfloat-model")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let writer = try SafetensorsWriter(path: directory + "/model.safetensors", tensors: [
            ("w", .f32, [4, 3]), ("mask", maskDType, [1, 1, 4, 4]), ("ids", .i64, [1, 5]), ("count", .i32, []),
        ])
        for (name, raw) in [("mask", mask), ("ids", bytes(ids)), ("count", bytes([Int32(-7)]))] {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: raw.count, alignment: 8)
            defer { buffer.deallocate() }
            buffer.copyBytes(from: raw)
            try writer.write(name, elementOffset: 0, bytes: UnsafeRawBufferPointer(buffer))
        }
        try weights.withUnsafeBufferPointer { (b) throws(CheckpointError) in try writer.write("w", floats: b) }
        try writer.finish()
        try Data(#"{"model_type": "test"}"#.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
        return directory
    }

    private let mask: [UInt8] = (0..<16).map { UInt8($0 % 5 == 0 ? 1 : 0) }
    private let ids: [Int64] = [0, (1 << 60) + 1, -3, 1 << 40, Int64.min]

    func testIntegerAndBoolTensorsAreCopiedWhateverTheMethodAndDType() throws {
        let a = try makeModel(weights: (0..<12).map(Float.init), mask: mask, ids: ids)
        let b = try makeModel(weights: (0..<12).map { Float($0) * 3 }, mask: mask, ids: ids)
        let config = """
            merge_method: slerp
            base_model: \(a)
            models:
              - model: \(a)
              - model: \(b)
            parameters: {t: 0.5}
            dtype: bfloat16
            out_dtype: float16
            """
        let plan = try Fixtures.compile(config)
        let text = Printer(graph: plan.graph, schedule: plan.schedule).render()
        XCTAssertTrue(text.contains("copy_equal %"), text)
        XCTAssertTrue(text.contains(": bool[1,1,4,4]"), text)
        XCTAssertTrue(text.contains(": i64[1,5]"), text)
        for limits in [Scheduler.Limits(threads: 2), Scheduler.Limits(budgetBytes: 3 * 1024 * 1024 + 600, threads: 1)] {
            let out = Fixtures.temporaryDirectory("nonfloat-out")
            defer { try? FileManager.default.removeItem(atPath: out) }
            let (run, peak) = try Fixtures.merge(configText: config, into: out, limits: limits)
            XCTAssertEqual(peak, run.schedule.predictedPeakBytes)
            let merged = try safetensorsFile(out + "/model.safetensors")
            XCTAssertEqual(merged["mask"]?.dtype, .bool)
            XCTAssertEqual(merged["mask"]?.bytes, mask)
            XCTAssertEqual(merged["ids"]?.dtype, .i64)
            XCTAssertEqual(merged["ids"]?.bytes, bytes(ids))
            XCTAssertEqual(merged["count"]?.dtype, .i32)
            XCTAssertEqual(merged["count"]?.bytes, bytes([Int32(-7)]))
            XCTAssertEqual(merged["w"]?.dtype, .f16, "floats still follow dtype/out_dtype")
        }
    }

    func testInputsThatDisagreeStopTheRunNamingTheTensor() throws {
        var other = mask
        other[9] ^= 1
        let a = try makeModel(weights: Array(repeating: 1, count: 12), mask: mask, ids: ids)
        let b = try makeModel(weights: Array(repeating: 2, count: 12), mask: other, ids: ids)
        let out = Fixtures.temporaryDirectory("nonfloat-differ")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let config = "merge_method: linear\nmodels:\n  - model: \(a)\n    parameters: {weight: 1}\n  - model: \(b)\n    parameters: {weight: 1}\n"
        XCTAssertThrowsError(try Fixtures.merge(configText: config, into: out)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("\"mask\"") && message.contains("differs between input 1 and input 2")
                          && message.contains("element 9"), message)
        }
    }

    func testDTypesThatDisagreeAreACompileError() throws {
        let a = try makeModel(weights: Array(repeating: 1, count: 12), mask: mask, ids: ids)
        let b = try makeModel(weights: Array(repeating: 2, count: 12), mask: mask, ids: ids, maskDType: .u8)
        let config = "merge_method: linear\nmodels:\n  - model: \(a)\n    parameters: {weight: 1}\n  - model: \(b)\n    parameters: {weight: 1}\n"
        XCTAssertThrowsError(try Fixtures.compile(config)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("tensor 'mask'") && message.contains("is bool") && message.contains("is uint8"), message)
        }
    }

    func testVerifierRefusesArithmeticOnIntegers() {
        var graph = Graph()
        let m = graph.addModel(ModelInput(name: "m", path: "/m"))
        let ids = graph.add(.load(model: m, tensor: "ids"), type: TensorType(dtype: .i64, shape: [4]))
        let doubled = graph.add(.add, [ids, ids], type: TensorType(dtype: .i64, shape: [4]))
        graph.addOutput(GraphOutput(name: "ids", value: doubled, stage: "s", directory: ""))
        XCTAssertThrowsError(try Verifier.verify(graph)) { error in
            XCTAssertEqual(error as? VerifierError, .badNonFloat(doubled, op: "add", "%0 is i64, which is copied, never computed with"))
        }
    }

    /// Every tensor of one safetensors file: dtype and bytes.
    private func safetensorsFile(_ path: String) throws -> [String: (dtype: DType, bytes: [UInt8])] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var result: [String: (DType, [UInt8])] = [:]
        for t in try SafetensorsModel.readHeader(path: path) { result[t.name] = (t.dtype, Array(data[t.byteRange])) }
        return result
    }
}
