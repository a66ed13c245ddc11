@testable import Executor
import Checkpoint
import IR
import XCTest

/// Hand-computed cases for the RAM and RAM+ kernels (mergekit's `ram`, `ramplus_tl`).
final class RamKernelTests: XCTestCase {
    func assertClose(_ actual: [Float], _ expected: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for (a, e) in zip(actual, expected) {
            XCTAssertEqual(a, e, accuracy: 1e-6, "\(actual) vs \(expected)", file: file, line: line)
        }
    }

    func ram(_ xs: [[Float]], epsilon: Double) throws -> [Float] {
        try runChunked(.ramMerge(epsilon: epsilon), xs, shape: [xs[0].count])
    }

    /// Unique elements pass through, shared ones are averaged over the vectors above epsilon, the rest vanish.
    func testRamKeepsUniqueAndAveragesShared() throws {
        let a: [Float] = [1, 0.5, 0, 1e-6, 2]
        let b: [Float] = [0, 1.5, 0, 1, -2]
        // 0: only a; 1: both → 1; 2: none; 3: a is below epsilon, so only b; 4: both → 0.
        assertClose(try ram([a, b], epsilon: 1e-5), [1, 1, 0, 1, 0])
        // With a large epsilon nothing counts.
        assertClose(try ram([a, b], epsilon: 10), [0, 0, 0, 0, 0])
    }

    /// In bf16, mergekit's RAM divides each shared value by the count in bf16 and sums the rounded terms in f32:
    /// the kernel follows that definition bit for bit on three bf16 task vectors (with ragged lanes), and NaN or
    /// ±∞ in a task vector gives NaN there (`z · unique` multiplies ∞ by a zero mask), as in mergekit.
    func testRamInBF16RoundsEachSharedTerm() throws {
        let n = 1003
        let xs = (1...3).map { k in pseudoRandom(n, seed: UInt64(k)).map { DTypeConversion.round($0 * 0.1, to: .bf16) } }
        let threshold = DTypeConversion.round(Float(0.02), to: .bf16)
        let out = try runChunked(.ramMerge(epsilon: 0.02), xs, shape: [n], dtype: .bf16, chunkRows: nil)
        for i in 0..<n {
            let values = xs.map { $0[i] }
            let count = Float(values.filter { abs($0) > threshold }.count)
            var sum: Float = 0
            for v in values where abs(v) > threshold {
                sum += count == 1 ? v : DTypeConversion.round(v / count, to: .bf16)
            }
            XCTAssertEqual(out[i].bitPattern, DTypeConversion.round(sum, to: .bf16).bitPattern, "element \(i)")
        }
        let special = try runChunked(.ramMerge(epsilon: 0.02), [[.nan, .infinity, 0.5, 0], [0.5, 0.5, -.infinity, 0]],
                                     shape: [4], dtype: .bf16)
        XCTAssertTrue(special[0].isNaN && special[1].isNaN && special[2].isNaN)
        XCTAssertEqual(special[3], 0)
    }

    /// epsilon is a strict bound: an element exactly at epsilon does not count.
    func testEpsilonIsExclusive() throws {
        assertClose(try ram([[0.25, 0.5], [0.75, 0.5]], epsilon: 0.25), [0.75, 0.5])
    }

    /// a: 4 unique, 1 shared → ρ = 0.25, λ = 1 + 0.4 · 0.25 = 1.1; b: 1 unique, 1 shared → ρ = 1, clamped to
    /// α = 0.5, λ = 1.2. Shared elements are averaged without λ.
    func testRamPlusScalesUniqueElementsByOverlap() throws {
        let a: [Float] = [1, 2, 3, 4, 0.5, 0]
        let b: [Float] = [0, 0, 0, 0, 1.5, 2]
        let out = try runChunked(.ramPlusMerge(r: 0.4, alpha: 0.5, epsilon: 1e-5), [a, b], shape: [6])
        assertClose(out, [1.1, 2.2, 3.3, 4.4, 1, 2.4])
        assertClose(try ram([a, b], epsilon: 1e-5), [1, 2, 3, 4, 1, 2])
    }

    /// No unique elements: ρ = shared / epsilon, clamped to α; nothing significant at all: ρ = 0, λ = 1.
    func testRamPlusEdgeCounts() {
        // Counts: shared 2, 2, 0; unique 0, 0, 0.
        let lambdas = RamKernel.plusScales(counts: [2, 2, 0, 0, 0, 0], r: 0.1, alpha: 0.2, epsilon: 1e-5)
        // In f32, as mergekit's tensors: 1 + Float(0.1)·Float(0.2).
        XCTAssertEqual(lambdas[0], 1 + Float(0.1) * Float(0.2))
        XCTAssertEqual(lambdas[1], 1 + Float(0.1) * Float(0.2))
        XCTAssertEqual(lambdas[2], 1)
    }

    /// The counting pass gives the same bytes for any chunking and thread count.
    func testRamPlusIsChunkInvariant() throws {
        let xs = (1...3).map { pseudoRandom(37 * 41, seed: UInt64($0)) }
        try assertChunkInvariant(.ramPlusMerge(r: 0.5, alpha: 0.3, epsilon: 0.2), xs, shape: [37, 41], dtype: .bf16)
        try assertChunkInvariant(.ramMerge(epsilon: 0.2), xs, shape: [37, 41], dtype: .bf16)
    }

    /// The vectorized RAM+ merge and counts give the definition's values bit for bit: random task vectors with
    /// zeros, values at the threshold, NaN, ranges that are not a multiple of eight long, and a scale of 0 (whose
    /// product with a negative value is −0); in f32 and with bf16 rounding of the shared terms.
    func testVectorizedLoopsMatchTheDefinition() {
        var rng = SystemRandomNumberGenerator()
        let n = 3 * 1024 + 13, threshold: Float = 0.25
        let specials: [Float] = [0, 0.25, -0.25, .nan, 0.2500001, -0, 1e-30]
        let xs: [[Float]] = (0..<3).map { _ in
            (0..<n).map { _ in Bool.random(using: &rng) ? specials.randomElement(using: &rng)!
                                                       : Float.random(in: -1...1, using: &rng) }
        }
        let buffers = xs.map { values -> UnsafeMutablePointer<Float> in
            let b = UnsafeMutablePointer<Float>.allocate(capacity: n)
            b.initialize(from: values, count: n)
            return b
        }
        defer { buffers.forEach { $0.deallocate() } }
        let pointers = buffers.map { UnsafePointer($0) }
        for dtype in [DType.f32, .bf16] {
            for scales in [[1, 1, 1], [1.5, 1.25, 3.0], [0, 1, 0]] as [[Float]] {
                for range in [0..<n, 5..<(n - 3), 17..<18] {
                    var out = [Float](repeating: -1, count: n)
                    out.withUnsafeMutableBufferPointer {
                        RamKernel.merge(pointers, threshold: threshold, scales: scales, dtype: dtype, range,
                                        into: $0.baseAddress!)
                    }
                    for i in range {
                        // mergekit: z = x · significant; Σ_j (z·unique)·λ_j + R((z·overlap) / max(count, 1)).
                        let count = (0..<3).filter { abs(xs[$0][i]) > threshold }.count
                        var sum: Float = 0
                        for j in 0..<3 {
                            let z = xs[j][i] * (abs(xs[j][i]) > threshold ? 1 : 0)
                            let shared = DTypeConversion.round((z * (count > 1 ? 1 : 0)) / Float(max(count, 1)), to: dtype)
                            sum += (z * (count == 1 ? 1 : 0)) * scales[j] + shared
                        }
                        XCTAssertEqual(out[i].bitPattern, sum.bitPattern, "\(dtype) element \(i)")
                    }
                }
            }
        }
        var counts = [Double](repeating: 0, count: 6)
        counts.withUnsafeMutableBufferPointer { RamKernel.count(pointers, threshold: threshold, 3..<n, into: $0.baseAddress!) }
        var expected = [Double](repeating: 0, count: 6)
        for i in 3..<n {
            let significant = (0..<3).filter { abs(xs[$0][i]) > threshold }
            for j in significant { expected[significant.count > 1 ? j : 3 + j] += 1 }
        }
        XCTAssertEqual(counts, expected)
    }
}
