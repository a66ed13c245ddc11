@testable import Executor
import IR
import XCTest

/// Hand-computed cases for the nearswap, nuslerp, multislerp, karcher and arcee_fusion kernels.
final class MergeMethodKernelTests: XCTestCase {
    let serial = Parallel(threads: 1)
    let r = Float(0.5).squareRoot()

    func buffer(_ values: [Float]) -> TensorBuffer {
        let b = TensorBuffer(count: values.count)
        for (i, v) in values.enumerated() { b.pointer[i] = v }
        return b
    }

    func assertClose(_ actual: TensorBuffer, _ expected: [Float], accuracy: Float = 1e-6,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for (a, e) in zip(actual.array, expected) {
            XCTAssertEqual(a, e, accuracy: accuracy, "\(actual.array) vs \(expected)", file: file, line: line)
        }
    }

    func testNearSwapWeighsByCloseness() throws {
        let out = try runChunked(.nearSwap(t: 0.01), [[0, 0, 1], [0.5, 0.001, 1]], shape: [3])
        // weights 0.01/0.5 = 0.02; 0.01/0.001 clamped to 1; 0.01/1e-6 clamped to 1.
        assertClose(buffer(out), [0.01, 0.001, 1])
    }

    func testVarianceTopKKeepsTheLargestNonzeroVariances() {
        let xs = [buffer([1, 0, 2, 0]), buffer([-1, 0, 2, 0.5])]
        // variances 1, 0, 0, 0.0625: two nonzero, half of them kept.
        XCTAssertEqual(MaskKernels.varianceTopK(xs, fraction: 0.5, parallel: serial).array, [1, 0, 0, 0])
        XCTAssertEqual(MaskKernels.varianceTopK(xs, fraction: 1, parallel: serial).array, [1, 1, 1, 1])
        XCTAssertEqual(MaskKernels.varianceTopK(xs, fraction: 0, parallel: serial).array, [0, 0, 0, 0])
        XCTAssertEqual(MaskKernels.varianceTopK(xs, fraction: 0.4, parallel: serial).array, [0, 0, 0, 0],
                       "⌊2 · 0.4⌋ = 0 elements")
    }

    func testNuslerpFlattenedRowsAndColumns() {
        let flat = NuslerpKernel.nuslerp(t: 0.5, buffer([1, 0]), buffer([0, 1]), shape: [2], axis: .flattened,
                                         dtype: .f32, parallel: serial)
        assertClose(flat, [r, r])
        // Row 0 is orthogonal (slerp), row 1 colinear (lerp).
        let rows = NuslerpKernel.nuslerp(t: 0.5, buffer([1, 0, 1, 0]), buffer([0, 1, 2, 0]), shape: [2, 2],
                                         axis: .lastDim, dtype: .f32, parallel: serial)
        assertClose(rows, [r, r, 1.5, 0])
        // The same vectors stored as columns.
        let columns = NuslerpKernel.nuslerp(t: 0.5, buffer([1, 1, 0, 0]), buffer([0, 2, 1, 0]), shape: [2, 2],
                                            axis: .firstDim, dtype: .f32, parallel: serial)
        assertClose(columns, [r, 1.5, r, 0])
    }

    func testNuslerpOfAZeroVectorIsFinite() {
        let out = NuslerpKernel.nuslerp(t: 0.25, buffer([0, 0]), buffer([3, 4]), shape: [2], axis: .flattened,
                                        dtype: .f32, parallel: serial)
        // cos = 0 with a zero vector: θ = π/2, so the result is sin(π/8)·b.
        let s = Float(0.3826834323650898)
        assertClose(out, [3 * s, 4 * s])
    }

    func testMultislerpOfOrthogonalVectors() throws {
        let out = try MultislerpKernel.merge([buffer([2, 0]), buffer([0, 2])], weights: [0.5, 0.5], eps: 1e-8,
                                             dtype: .f32, parallel: serial)
        assertClose(out, [2 * r, 2 * r])
    }

    func testMultislerpFallsBackToLinearForTwoAntipodalInputs() throws {
        let out = try MultislerpKernel.merge([buffer([1, 0]), buffer([-1, 0])], weights: [0.5, 0.5], eps: 1e-8,
                                             dtype: .f32, parallel: serial)
        XCTAssertEqual(out.array, [0, 0])
    }

    func testMultislerpRejectsAVanishingMeanOfMoreThanTwo() {
        XCTAssertThrowsError(try MultislerpKernel.merge([buffer([1, 0]), buffer([-1, 0]), buffer([0, 0])],
                                                        weights: [1.0 / 3, 1.0 / 3, 1.0 / 3], eps: 1e-8,
                                                        dtype: .f32, parallel: serial))
    }

    func testKarcherMeanOfOrthogonalVectors() {
        let out = KarcherKernel.merge([buffer([2, 0]), buffer([0, 2])], maxIter: 10, tol: 1e-5, dtype: .f32,
                                      parallel: serial)
        assertClose(out, [2 * r, 2 * r])
    }

    func testKarcherSkipsZeroInputsButCountsThemInTheScale() {
        let out = KarcherKernel.merge([buffer([1, 0]), buffer([0, 1]), buffer([0, 0])], maxIter: 10, tol: 1e-5,
                                      dtype: .f32, parallel: serial)
        // Direction from the two valid inputs; scale (1 + 1 + 0) / 3.
        assertClose(out, [2 * r / 3, 2 * r / 3])
        let zeros = KarcherKernel.merge([buffer([0, 0]), buffer([0, 0])], maxIter: 10, tol: 1e-5, dtype: .f32,
                                        parallel: serial)
        XCTAssertEqual(zeros.array, [0, 0])
    }

    func testArceeFusionTakesOnlyTheOutlyingChange() {
        let base = buffer([Float](repeating: 0, count: 8))
        let other = buffer([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 2.0])
        // One row: importance ∝ |other|; q1, median, q3 = 0.2, 0.4, 0.6 (indices 1, 3, 5) give a threshold
        // of 1.0 (times the KL), reached only by 2.0.
        let out = ArceeFusionKernel.merge(base: base, other: other, rowLength: 8, dtype: .f32, parallel: serial)
        XCTAssertEqual(out.array, [0, 0, 0, 0, 0, 0, 0, 2])
    }

    func testTorchFloat32Primitives() {
        for x in stride(from: Float(-20), through: 20, by: 0.37) {
            XCTAssertEqual(TorchFloat32.exp(x), Float(exp(Double(x))), accuracy: Float(exp(Double(x))).ulp)
        }
        XCTAssertEqual(TorchFloat32.exp(-200), 0)
        let values = (1...100).map(Float.init)
        values.withUnsafeBufferPointer { v in
            XCTAssertEqual(TorchFloat32.rowSum(v), 5050)
            XCTAssertEqual(TorchFloat32.reduceAll(v, +), 5050)
            XCTAssertEqual(TorchFloat32.reduceAll(v, TorchFloat32.maximum), 100)
            XCTAssertEqual(TorchFloat32.rowSum(UnsafeBufferPointer(rebasing: v[0..<5])), 15)
        }
        XCTAssertEqual(TorchFloat32.ceilLog2(2), 1)
        XCTAssertEqual(TorchFloat32.ceilLog2(17), 5)
    }
}
