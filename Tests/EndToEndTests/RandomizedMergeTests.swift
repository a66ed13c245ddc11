import Foundation
import IR
import XCTest

/// Full merges with the randomized methods (dare_*, della*) on the conformance models: seeds, threads, density 1.
final class RandomizedMergeTests: XCTestCase {
    /// Two fine-tunes over the base with `method`; `parameters` go on both models, `global` at the top level.
    static func config(_ method: String, parameters: String = "density: 0.5", global: String = "") -> String {
        """
        models:
          - model: models/llama-ft-a
            parameters: {weight: 0.6, \(parameters)}
          - model: models/llama-ft-b
            parameters: {weight: 0.4, \(parameters)}
        merge_method: \(method)
        base_model: models/llama-base
        dtype: float32
        \(global)
        """
    }

    private func merged(_ config: String, threads: Int = 2, seed: UInt64 = 0) throws -> Data {
        let out = Fixtures.temporaryDirectory("rand")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try Fixtures.merge(configText: config, into: out, threads: threads, seed: seed)
        return try Fixtures.shardBytes("\(out)/model.safetensors")
    }

    private func tensors(_ config: String, seed: UInt64) throws -> [String: (TensorType, [Float])] {
        let out = Fixtures.temporaryDirectory("rand")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try Fixtures.merge(configText: config, into: out, seed: seed)
        return try CheckpointComparison.tensors(in: out)
    }

    /// (a) The same seed gives identical bytes with 1 and 2 threads.
    func testSameSeedGivesIdenticalBytesWithOneAndTwoThreads() throws {
        for method in ["dare_ties", "dare_linear", "della", "della_linear"] {
            let config = Self.config(method)
            let one = try merged(config, threads: 1, seed: 1234)
            XCTAssertEqual(one, try merged(config, threads: 2, seed: 1234), method)
            XCTAssertNotEqual(one, try merged(Self.config(method, parameters: "density: 1"), seed: 1234),
                              "\(method): density 0.5 prunes something")
        }
    }

    /// (b) Different seeds give different masks: with one fine-tune, weight 1 and no rescaling, the merge is
    /// base + mask · (ft − base), so the mask is where the output differs from the base.
    func testDifferentSeedsGiveDifferentMasks() throws {
        let config = """
            models:
              - model: models/llama-ft-a
                parameters: {weight: 1, density: 0.5}
            merge_method: dare_linear
            base_model: models/llama-base
            parameters: {rescale: false}
            dtype: float32
            """
        let base = try CheckpointComparison.tensors(in: "\(Fixtures.conformance)/models/llama-base")
        func mask(_ seed: UInt64) throws -> [Bool] {
            let out = try tensors(config, seed: seed)
            return try base.keys.sorted().flatMap { name -> [Bool] in
                let merged = try XCTUnwrap(out[name]?.1, name)
                return zip(merged, base[name]!.1).map { $0 != $1 }
            }
        }
        let first = try mask(1)
        XCTAssertEqual(try mask(1), first, "the same seed repeats the mask")
        let kept = Double(first.filter { $0 }.count), n = Double(first.count)
        XCTAssertLessThan(abs(kept - n / 2), 3 * (n / 4).squareRoot(), "about half is kept")
        let differing = Double(zip(first, try mask(2)).filter { $0 != $1 }.count)
        XCTAssertEqual(differing / n, 0.5, accuracy: 0.05, "independent masks differ in about half the elements")
    }

    /// (e) With density 1 nothing is pruned: dare_ties and della are ties, dare_linear and della_linear are
    /// task_arithmetic, byte for byte (normalize set alike, since the defaults differ).
    func testDensityOneEqualsTiesAndTaskArithmetic() throws {
        let full = "density: 1"
        for normalize in [false, true] {
            let global = "parameters: {normalize: \(normalize)}"
            let ties = try merged(Self.config("ties", parameters: full, global: global))
            XCTAssertEqual(try merged(Self.config("dare_ties", parameters: full, global: global), seed: 9), ties)
            XCTAssertEqual(try merged(Self.config("della", parameters: full, global: global), seed: 9), ties)
        }
        let arithmetic = try merged(Self.config("task_arithmetic", parameters: full))
        XCTAssertEqual(try merged(Self.config("dare_linear", parameters: full), seed: 9), arithmetic)
        XCTAssertEqual(try merged(Self.config("della_linear", parameters: full), seed: 9), arithmetic)
    }

    /// ram and ramplus_tl on real checkpoints agree with a direct f64 evaluation of mergekit's formulas.
    func testRamMethodsMatchTheirFormulas() throws {
        let root = "\(Fixtures.conformance)/models"
        let base = try CheckpointComparison.tensors(in: "\(root)/llama-base")
        let a = try CheckpointComparison.tensors(in: "\(root)/llama-ft-a")
        let b = try CheckpointComparison.tensors(in: "\(root)/llama-ft-b")
        for (method, global) in [("ram", "parameters: {epsilon: 0.001}"),
                                 ("ramplus_tl", "parameters: {epsilon: 0.001, r: 0.5, alpha: 0.3}")] {
            let out = try tensors(Self.config(method, parameters: "density: 1", global: global), seed: 0)
            for (name, (_, b0)) in base {
                let deltas = [a[name]!.1, b[name]!.1].map { ft in zip(ft, b0).map { $0 - $1 } }
                let expected = Self.ram(deltas, epsilon: 0.001, plus: method == "ramplus_tl" ? (0.5, 0.3) : nil)
                let actual = try XCTUnwrap(out[name]?.1, name)
                for i in b0.indices {
                    let e = Double(b0[i]) + expected[i]
                    XCTAssertEqual(Double(actual[i]), e, accuracy: 1e-6 + 1e-5 * abs(e), "\(method) \(name)[\(i)]")
                }
            }
        }
    }

    /// mergekit's `_prepare_ram_vectors` and merge, written out plainly.
    static func ram(_ deltas: [[Float]], epsilon: Double, plus: (r: Double, alpha: Double)?) -> [Double] {
        let n = deltas[0].count
        let significant = deltas.map { d in d.map { Double(abs($0)) > epsilon } }
        let counts = (0..<n).map { i in significant.filter { $0[i] }.count }
        let lambdas = significant.map { s -> Double in
            guard let plus else { return 1 }
            let shared = Double((0..<n).filter { s[$0] && counts[$0] > 1 }.count)
            let unique = Double((0..<n).filter { s[$0] && counts[$0] == 1 }.count)
            return 1 + plus.r * min(max(shared / max(unique, epsilon), 0), plus.alpha)
        }
        return (0..<n).map { i in
            var sum = 0.0
            for k in deltas.indices where significant[k][i] {
                sum += Double(deltas[k][i]) * (counts[i] == 1 ? lambdas[k] : 1 / Double(counts[i]))
            }
            return sum
        }
    }
}

extension CommandLineTests {
    /// `--random-seed` reaches the IR (also for `plan`), and defaults to 0.
    func testRandomSeedIsShownOnTheOps() throws {
        let (dir, name) = try scratchConfig(RandomizedMergeTests.config("dare_ties"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seeded = try run(["plan", name, "--random-seed", "7"], in: dir)
        XCTAssertEqual(seeded.status, 0, seeded.stderr)
        XCTAssertTrue(seeded.stdout.contains("random_prune(density=0.5, rescale, seed=7, key=0x"), seeded.stdout)
        let unseeded = try run(["plan", name], in: dir)
        XCTAssertTrue(unseeded.stdout.contains("random_prune(density=0.5, rescale, seed=0, key=0x"), unseeded.stdout)
        // A negative seed is 2^64 plus it, as torch.manual_seed takes it; the seed plan prints can be given back.
        let negative = try run(["plan", name, "--random-seed", "-1"], in: dir)
        XCTAssertTrue(negative.stdout.contains("seed=18446744073709551615, key=0x"), negative.stdout)
        let printed = try run(["plan", name, "--random-seed", "18446744073709551615"], in: dir)
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertEqual(printed.stdout, negative.stdout)
        for outside in ["18446744073709551616", "-9223372036854775809", "1.5"] {
            let refused = try run(["plan", name, "--random-seed", outside], in: dir)
            XCTAssertEqual(refused.status, 64, outside)
        }
    }
}
