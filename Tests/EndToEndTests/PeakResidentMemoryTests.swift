#if canImport(Glibc)
import Glibc
#endif
import Checkpoint
import Executor
import Foundation
import IR
import XCTest

/// The whole `mergegraph` process stays within `--max-memory` plus the fixed overhead the README states,
/// even when one tensor alone is larger than that, measured by the kernel (`wait4`'s peak RSS of the child).
final class PeakResidentMemoryTests: XCTestCase {
    /// The process overhead the README promises on top of the budget.
    static let overhead = 64 << 20

    /// Two models with a bf16 [4096, 4096] embedding (32 MiB stored, 64 MiB as f32) and a norm.
    private func makeModels(in directory: String) throws {
        let rows = 4096, columns = 4096
        for (name, seed) in [("a", 1), ("b", 2)] {
            let model = "\(directory)/\(name)"
            try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
            try #"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1, "torch_dtype": "bfloat16"}"#
                .write(toFile: "\(model)/config.json", atomically: true, encoding: .utf8)
            let writer = try SafetensorsWriter(path: "\(model)/model.safetensors", tensors: [
                ("model.embed_tokens.weight", .bf16, [rows, columns]), ("model.norm.weight", .bf16, [columns]),
            ])
            var row = [Float](repeating: 0, count: columns)
            for r in 0..<rows {
                for c in 0..<columns { row[c] = Float((r * 31 + c * 7 + seed * 13) % 1000) / 500 - 1 }
                try row.withUnsafeBufferPointer {
                    try writer.write("model.embed_tokens.weight", elementOffset: r * columns, floats: $0)
                }
            }
            try row.withUnsafeBufferPointer { try writer.write("model.norm.weight", floats: $0) }
            try writer.finish()
        }
        try """
            models:
              - model: a
                parameters: {weight: 0.25}
              - model: b
                parameters: {weight: 0.75}
            merge_method: linear
            dtype: bfloat16
            """.write(toFile: "\(directory)/merge.yml", atomically: true, encoding: .utf8)
    }

    /// Runs the binary in `directory` (through `sh -c 'cd … && exec …'`, so the measured process is the binary
    /// itself) and returns its exit status and peak resident set in bytes; standard error goes to `stderr.txt`.
    /// Runs the binary with `arguments` in `directory` (stderr to `stderr.txt`) and returns its exit status and peak
    /// RSS. A Python process forks the child and reports `wait4`'s figure for it: the child of a `posix_spawn`
    /// (which shares the spawner's memory until it execs, as glibc's does) inherits the spawner's own peak RSS
    /// through the exec, so spawning the binary directly from this test process would report the test process's
    /// peak whenever that is larger.
    private func runMeasured(_ arguments: [String], in directory: String) throws -> (status: Int32, peakBytes: Int) {
        let script = """
            import os, sys
            directory, argv = sys.argv[1], sys.argv[2:]
            pid = os.fork()
            if pid == 0:
                os.chdir(directory)
                os.dup2(os.open("stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
                os.execv(argv[0], argv)
            _, status, usage = os.wait4(pid, 0)
            with open(os.path.join(directory, "rss.txt"), "w") as f:
                f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
            """
        let arguments = ["/usr/bin/env", "python3", "-c", script, directory, CommandLineTests.binary.path] + arguments
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { (text: String) in strdup(text) } + [nil]
        defer { for p in argv { free(p) } }
        var pid = pid_t()
        XCTAssertEqual(posix_spawn(&pid, "/usr/bin/env", nil, nil, argv, environ), 0, "posix_spawn")
        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        XCTAssertEqual((status >> 8) & 0xFF, 0, "the measuring Python process")
        let report = try String(contentsOfFile: "\(directory)/rss.txt", encoding: .utf8).split(separator: " ")
        let code = try XCTUnwrap(report.first.flatMap { Int32($0) }), kilobytes = try XCTUnwrap(report.last.flatMap { Int($0) })
        return (code, kilobytes * 1024)
    }

    func testPeakRSSStaysWithinTheBudgetWhenATensorIsLargerThanIt() throws {
        let directory = Fixtures.temporaryDirectory("rss")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try makeModels(in: directory)
        let budget = 8 << 20
        let run = try runMeasured(["run", "merge.yml", "out", "--max-memory", "8MiB", "--quiet"], in: directory)
        let messages = (try? String(contentsOfFile: "\(directory)/stderr.txt", encoding: .utf8)) ?? ""
        XCTAssertEqual(run.status, 0, messages)
        XCTAssertGreaterThan(run.peakBytes, 1 << 20, "the child's peak RSS was measured")
        XCTAssertLessThanOrEqual(run.peakBytes, budget + Self.overhead,
                                 "peak RSS \(run.peakBytes) bytes for a budget of \(budget) bytes")
        // Whole tensors would not fit: the embedding alone is 64 MiB as f32, three of them are alive at once.
        XCTAssertGreaterThan(3 * 4096 * 4096 * 4, budget + Self.overhead)

        let model = try SafetensorsModel(directory: "\(directory)/out")
        let tensor = try XCTUnwrap(model.tensor("model.embed_tokens.weight"))
        XCTAssertEqual(tensor.shape, [4096, 4096])
        var last = [Float](repeating: 0, count: 4096)
        try last.withUnsafeMutableBufferPointer {
            try model.readFloats(tensor, elementOffset: 4095 * 4096, count: 4096, into: $0.baseAddress!)
        }
        for c in [0, 1, 4095] {
            let a = DTypeConversion.round(Float((4095 * 31 + c * 7 + 13) % 1000) / 500 - 1, to: .bf16)
            let b = DTypeConversion.round(Float((4095 * 31 + c * 7 + 26) % 1000) / 500 - 1, to: .bf16)
            XCTAssertEqual(last[c], DTypeConversion.round(Float(0.25 * Double(a) + 0.75 * Double(b)), to: .bf16))
        }
    }
}
