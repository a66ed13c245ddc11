@testable import Executor
import IR
import XCTest

/// Hand-computed cases for the RAM and RAM+ kernels (mergekit's `ram`, `ramplus_tl`).
final class RamKernelTests: XCTestCase {
    let serial = Parallel(threads: 1)

    func buffer(_ values: [Float]) -> TensorBuffer {
        let b = TensorBuffer(count: values.count)
        for (i, v) in values.enumerated() { b.pointer[i] = v }
        return b
    }

    func assertClose(_ actual: TensorBuffer, _ expected: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for (a, e) in zip(actual.array, expected) {
            XCTAssertEqual(a, e, accuracy: 1e-6, "\(actual.array) vs \(expected)", file: file, line: line)
        }
    }

    /// Unique elements pass through, shared ones are averaged over the vectors above epsilon, the rest vanish.
    func testRamKeepsUniqueAndAveragesShared() {
        let a = buffer([1, 0.5, 0, 1e-6, 2])
        let b = buffer([0, 1.5, 0, 1, -2])
        // 0: only a; 1: both → 1; 2: none; 3: a is below epsilon, so only b; 4: both → 0.
        assertClose(RamKernel.merge([a, b], epsilon: 1e-5, dtype: .f32, parallel: serial), [1, 1, 0, 1, 0])
        // With a large epsilon nothing counts.
        assertClose(RamKernel.merge([a, b], epsilon: 10, dtype: .f32, parallel: serial), [0, 0, 0, 0, 0])
    }

    /// epsilon is a strict bound: an element exactly at epsilon does not count.
    func testEpsilonIsExclusive() {
        let eps = Float(0.25)
        let out = RamKernel.merge([buffer([0.25, 0.5]), buffer([0.75, 0.5])], epsilon: Double(eps), dtype: .f32,
                                  parallel: serial)
        assertClose(out, [0.75, 0.5])
    }

    /// a: 4 unique, 1 shared → ρ = 0.25, λ = 1 + 0.4 · 0.25 = 1.1; b: 1 unique, 1 shared → ρ = 1, clamped to
    /// α = 0.5, λ = 1.2. Shared elements are averaged without λ.
    func testRamPlusScalesUniqueElementsByOverlap() {
        let a = buffer([1, 2, 3, 4, 0.5, 0])
        let b = buffer([0, 0, 0, 0, 1.5, 2])
        let lambdas = RamKernel.plusScales([a, b], r: 0.4, alpha: 0.5, epsilon: 1e-5, dtype: .f32, parallel: serial)
        XCTAssertEqual(lambdas[0], 1.1, accuracy: 1e-12)
        XCTAssertEqual(lambdas[1], 1.2, accuracy: 1e-12)
        let out = RamKernel.mergePlus([a, b], r: 0.4, alpha: 0.5, epsilon: 1e-5, dtype: .f32, parallel: serial)
        assertClose(out, [1.1, 2.2, 3.3, 4.4, 1, 2.4])
        assertClose(RamKernel.merge([a, b], epsilon: 1e-5, dtype: .f32, parallel: serial), [1, 2, 3, 4, 1, 2])
    }

    /// No unique elements: ρ = shared / epsilon, clamped to α; nothing significant at all: ρ = 0, λ = 1.
    func testRamPlusEdgeCounts() {
        let same = buffer([1, 1])
        let lambdas = RamKernel.plusScales([same, buffer([2, 2]), buffer([0, 0])], r: 0.1, alpha: 0.2, epsilon: 1e-5,
                                           dtype: .f32, parallel: serial)
        XCTAssertEqual(lambdas[0], 1.02, accuracy: 1e-12)
        XCTAssertEqual(lambdas[1], 1.02, accuracy: 1e-12)
        XCTAssertEqual(lambdas[2], 1)
    }
}
