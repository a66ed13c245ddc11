@testable import Executor
import IR
import XCTest

/// Hand-computed cases for the nearswap, nuslerp, multislerp, karcher and arcee_fusion kernels.
final class MergeMethodKernelTests: XCTestCase {
    let serial = Parallel(threads: 1)
    let r = Float(0.5).squareRoot()

    func assertClose(_ actual: [Float], _ expected: [Float], accuracy: Float = 1e-6,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for (a, e) in zip(actual, expected) {
            XCTAssertEqual(a, e, accuracy: accuracy, "\(actual) vs \(expected)", file: file, line: line)
        }
    }

    func testNearSwapWeighsByCloseness() throws {
        let out = try runChunked(.nearSwap(t: 0.01), [[0, 0, 1], [0.5, 0.001, 1]], shape: [3])
        // weights 0.01/0.5 = 0.02; 0.01/0.001 clamped to 1; 0.01/1e-6 clamped to 1.
        assertClose(out, [0.01, 0.001, 1])
    }

    func testVarianceTopKKeepsTheLargestNonzeroVariances() throws {
        let xs: [[Float]] = [[1, 0, 2, 0], [-1, 0, 2, 0.5]]
        func topK(_ fraction: Double) throws -> [Float] {
            try runChunked(.varianceTopK(fraction: fraction), [variances(xs, shape: [4])], shape: [4])
        }
        // variances 1, 0, 0, 0.0625: two nonzero, half of them kept.
        XCTAssertEqual(try topK(0.5), [1, 0, 0, 0])
        XCTAssertEqual(try topK(1), [1, 1, 1, 1])
        XCTAssertEqual(try topK(0), [0, 0, 0, 0])
        XCTAssertEqual(try topK(0.4), [0, 0, 0, 0], "⌊2 · 0.4⌋ = 0 elements")
    }

    func testNuslerpFlattenedRowsAndColumns() throws {
        let flat = try runChunked(.nuslerp(t: 0.5, axis: .flattened), [[1, 0], [0, 1]], shape: [2])
        assertClose(flat, [r, r])
        // Row 0 is orthogonal (slerp), row 1 colinear (lerp).
        let rows = try runChunked(.nuslerp(t: 0.5, axis: .lastDim), [[1, 0, 1, 0], [0, 1, 2, 0]], shape: [2, 2])
        assertClose(rows, [r, r, 1.5, 0])
        // The same vectors stored as columns.
        let columns = try runChunked(.nuslerp(t: 0.5, axis: .firstDim), [[1, 1, 0, 0], [0, 2, 1, 0]], shape: [2, 2],
                                     chunkRows: 1)
        assertClose(columns, [r, 1.5, r, 0])
    }

    func testNuslerpOfAZeroVectorIsFinite() throws {
        let out = try runChunked(.nuslerp(t: 0.25, axis: .flattened), [[0, 0], [3, 4]], shape: [2])
        // cos = 0 with a zero vector: θ = π/2, so the result is sin(π/8)·b.
        let s = Float(0.3826834323650898)
        assertClose(out, [3 * s, 4 * s])
    }

    func testMultislerpOfOrthogonalVectors() throws {
        let out = try runChunked(.multislerp(weights: [0.5, 0.5], eps: 1e-8), [[2, 0], [0, 2]], shape: [2])
        assertClose(out, [2 * r, 2 * r])
    }

    func testMultislerpFallsBackToLinearForTwoAntipodalInputs() throws {
        let out = try runChunked(.multislerp(weights: [0.5, 0.5], eps: 1e-8), [[1, 0], [-1, 0]], shape: [2])
        XCTAssertEqual(out, [0, 0])
    }

    /// With `eps` 0 the f32 kernel's tangent (zero in exact arithmetic, mergekit's rounding) gives `sin(t)/t`'s
    /// limit 1, not 0/0: the same result as the default `eps` (a new-user finding).
    func testMultislerpWithoutEpsIsFinite() throws {
        let inputs: [[Float]] = [[2, 0], [0, 2], [2, 2]]   // here the computed tangent is exactly 0
        let bare = try runChunked(.multislerp(weights: [0.25, 0.25, 0.5], eps: 0), inputs, shape: [2])
        let usual = try runChunked(.multislerp(weights: [0.25, 0.25, 0.5], eps: 1e-8), inputs, shape: [2])
        XCTAssertTrue(bare.allSatisfy(\.isFinite), "\(bare)")
        assertClose(bare, usual)
    }

    /// A NaN input makes its norm NaN and so the whole f32 result NaN (mergekit's `NaN < eps` is false), for three
    /// models and for two (not the linear fallback of a vanishing mean); it is not called a vanishing mean.
    func testMultislerpOfANaNInputIsNaNNotAVanishingMean() throws {
        for inputs: [[Float]] in [[[2, .nan], [0, 2], [1, 1]], [[2, .nan], [0, 2]]] {
            let weights = [Double](repeating: 1 / Double(inputs.count), count: inputs.count)
            let out = try runChunked(.multislerp(weights: weights, eps: 1e-8), inputs, shape: [2])
            XCTAssertTrue(out.allSatisfy(\.isNaN), "\(inputs.count) inputs: \(out)")
        }
    }

    func testMultislerpRejectsAVanishingMeanOfMoreThanTwo() {
        XCTAssertThrowsError(try runChunked(.multislerp(weights: [1.0 / 3, 1.0 / 3, 1.0 / 3], eps: 1e-8),
                                            [[1, 0], [-1, 0], [0, 0]], shape: [2])) { error in
            guard case ExecutionError.undefinedMerge(let value, let op, let reason) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(value, "")
            XCTAssertEqual(op, "multislerp")
            XCTAssertTrue(reason.contains("weighted sum of the input tensors is zero"), reason)
        }
    }

    func testKarcherMeanOfOrthogonalVectors() throws {
        let out = try runChunked(.karcher(maxIter: 10, tol: 1e-5), [[2, 0], [0, 2]], shape: [2])
        assertClose(out, [2 * r, 2 * r])
    }

    func testKarcherSkipsZeroInputsButCountsThemInTheScale() throws {
        let out = try runChunked(.karcher(maxIter: 10, tol: 1e-5), [[1, 0], [0, 1], [0, 0]], shape: [2])
        // Direction from the two valid inputs; scale (1 + 1 + 0) / 3.
        assertClose(out, [2 * r / 3, 2 * r / 3])
        let zeros = try runChunked(.karcher(maxIter: 10, tol: 1e-5), [[0, 0], [0, 0]], shape: [2])
        XCTAssertEqual(zeros, [0, 0])
    }

    func testArceeFusionTakesOnlyTheOutlyingChange() throws {
        let base = [Float](repeating: 0, count: 8)
        let other: [Float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 2.0]
        // One row: importance ∝ |other|; q1, median, q3 = 0.2, 0.4, 0.6 (indices 1, 3, 5) give a threshold
        // of 1.0 (times the KL), reached only by 2.0.
        XCTAssertEqual(try runChunked(.arceeFusion, [base, other], shape: [8]), [0, 0, 0, 0, 0, 0, 0, 2])
    }

    /// NearSwap's eight-lane loop gives the scalar definition's bits: equal values, differences around 1e-6 and
    /// `t`, NaN and infinities, over ranges with a ragged tail.
    func testNearSwapLanesMatchTheScalar() {
        var rng = SystemRandomNumberGenerator()
        let n = 4099
        let specials: [Float] = [0, -0, 1e-6, -1e-6, 0.01, .nan, .infinity, -.infinity, 5e-7]
        let a = (0..<n).map { _ in Float.random(in: -0.05...0.05, using: &rng) }
        let b = a.map { x -> Float in
            Bool.random(using: &rng) ? x + specials.randomElement(using: &rng)! : x + Float.random(in: -0.02...0.02, using: &rng)
        }
        let buffers = [a, b].map { values -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(from: values, count: n)
            return p
        }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { (buffers + [out]).forEach { $0.deallocate() } }
        let p = SharedPointers(inputs: buffers.map { UnsafePointer($0) }, output: out)
        for t in [0.01, 0.0, 1e-7] {
            for dtype in [DType.f32, .bf16, .f16] {
                NearSwapKernel.merge(t: t, dtype: dtype, p, 3..<n)
                for i in 3..<n {
                    XCTAssertEqual(out[i].bitPattern, NearSwapKernel.merge(t: t, dtype: dtype, p, i).bitPattern,
                                   "t \(t), \(dtype), element \(i)")
                }
            }
        }
    }

    func testTorchFloat32Primitives() {
        for x in stride(from: Float(-20), through: 20, by: 0.37) {
            XCTAssertEqual(TorchFloat32.exp(x), Float(exp(Double(x))), accuracy: Float(exp(Double(x))).ulp)
        }
        XCTAssertEqual(TorchFloat32.exp(-200), 0)
        let values = (1...100).map(Float.init)
        values.withUnsafeBufferPointer { v in
            XCTAssertEqual(TorchFloat32.rowSum(v), 5050)
            XCTAssertEqual(TorchFloat32.sumOfAll(v), 5050)
            XCTAssertEqual(TorchFloat32.maximumOfAll(v), 100)
            XCTAssertEqual(TorchFloat32.rowSum(UnsafeBufferPointer(rebasing: v[0..<5])), 15)
        }
        XCTAssertEqual(TorchFloat32.ceilLog2(2), 1)
        XCTAssertEqual(TorchFloat32.ceilLog2(17), 5)
    }

    /// The eight-lane `exp`, `maximum` and `reduceAll` give each lane's scalar result bit for bit, specials included.
    func testTorchFloat32LanesMatchScalars() {
        var rng = SystemRandomNumberGenerator()
        var xs: [Float] = [-.infinity, .infinity, .nan, -104, -103.99999, 100, 100.00001, -0.0, 0, 88.7, -87.3, 1e-30]
        for _ in 0..<40_000 { xs.append(Float.random(in: -110...110, using: &rng)) }
        for _ in 0..<10_000 { xs.append(Float.random(in: -1...1, using: &rng)) }
        while xs.count % 8 != 0 { xs.append(0) }
        for start in stride(from: 0, to: xs.count, by: 8) {
            let lanes = SIMD8<Float>(xs[start..<start + 8])
            let y = TorchFloat32.exp(lanes)
            let other = SIMD8<Float>(xs[((start + 8) % xs.count)..<((start + 8) % xs.count + 8)])
            let m = TorchFloat32.maximum(lanes, other)
            for l in 0..<8 {
                XCTAssertEqual(y[l].bitPattern, TorchFloat32.exp(lanes[l]).bitPattern, "exp(\(lanes[l]))")
                XCTAssertEqual(m[l].bitPattern, TorchFloat32.maximum(lanes[l], other[l]).bitPattern,
                               "maximum(\(lanes[l]), \(other[l]))")
            }
        }
        // reduce_all as ATen writes it: lane accumulators, the tail in its lanes, then i^4, i^2, i^1.
        func reference(_ x: [Float], _ op: (Float, Float) -> Float) -> Float {
            guard x.count >= 8 else { return x.dropFirst().reduce(x[0], op) }
            var acc = Array(x[0..<8])
            var d = 8
            while d < x.count - x.count % 8 {
                for l in 0..<8 { acc[l] = op(acc[l], x[d + l]) }
                d += 8
            }
            for l in 0..<(x.count - d) { acc[l] = op(acc[l], x[d + l]) }
            for stride in [4, 2, 1] { acc = (0..<8).map { op(acc[$0], acc[$0 ^ stride]) } }
            return acc[0]
        }
        for n in [1, 5, 8, 13, 64, 2048, 2051] {
            var row = (0..<n).map { _ in Float.random(in: -30...30, using: &rng) }
            for _ in 0..<2 {
                row.withUnsafeBufferPointer { v in
                    XCTAssertEqual(TorchFloat32.sumOfAll(v).bitPattern, reference(row, +).bitPattern, "n \(n)")
                    XCTAssertEqual(TorchFloat32.maximumOfAll(v).bitPattern,
                                   reference(row, TorchFloat32.maximum).bitPattern, "n \(n)")
                }
                row[n / 2] = .nan
            }
            // A largest zero: the same value, either sign (see `maximumOfAll`).
            let zeros = (0..<n).map { i -> Float in
                switch i % 3 {
                case 0: return 0
                case 1: return -0.0
                default: return -Float(i)
                }
            }
            zeros.withUnsafeBufferPointer { v in
                XCTAssertEqual(TorchFloat32.maximumOfAll(v), reference(zeros, TorchFloat32.maximum), "n \(n)")
            }
        }
    }
}
