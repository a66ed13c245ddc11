@testable import Executor
import IR
import XCTest

/// Statistical and determinism properties of DARE's random pruning (`random_prune`) and the Philox generator.
final class RandomPruneKernelTests: XCTestCase {
    static let count = 1_000_000

    /// `1 + u` with u uniform in [−3, 3) from a fixed LCG: nonzero mean, both signs.
    static func deltas(count: Int = count, seed: UInt64 = 7) -> TensorBuffer {
        var state = seed
        let b = TensorBuffer(count: count)
        for i in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Double(state >> 11) * 0x1p-53
            b.pointer[i] = Float(1 + 6 * u - 3)
        }
        return b
    }

    func prune(_ x: TensorBuffer, density: Double, rescale: Bool = false, seed: UInt64 = 0, key: UInt64 = 1,
               threads: Int = 2) -> TensorBuffer {
        RandomPruneKernel.prune(x, density: density, rescale: rescale, seed: seed, key: key, dtype: .f32,
                                parallel: Parallel(threads: threads))
    }

    /// Random123's known-answer vectors for Philox4x32-10.
    func testPhiloxMatchesKnownAnswers() {
        let zero = Philox4x32(seed: 0).block((0, 0, 0, 0))
        XCTAssertEqual([zero.0, zero.1, zero.2, zero.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let ones = Philox4x32(seed: .max).block((.max, .max, .max, .max))
        XCTAssertEqual([ones.0, ones.1, ones.2, ones.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let pi = Philox4x32(seed: 0x299f_31d0 << 32 | 0xa409_3822).block((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344))
        XCTAssertEqual([pi.0, pi.1, pi.2, pi.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    /// (c) The number of kept elements is Binomial(n, density): within 3 standard deviations.
    func testKeptFractionIsWithinThreeSigmaOfDensity() {
        let x = Self.deltas()
        let n = Double(x.count)
        for (density, key) in [(0.1, 1), (0.5, 2), (0.9, 3)] as [(Double, UInt64)] {
            let kept = Double(prune(x, density: density, key: key).array.filter { $0 != 0 }.count)
            let sd = (n * density * (1 - density)).squareRoot()
            XCTAssertLessThan(abs(kept - n * density), 3 * sd, "density \(density): kept \(kept) of \(n)")
        }
    }

    /// (d) With L1 rescaling the mean of the pruned deltas stays the mean of the deltas (about 1); without it,
    /// it shrinks to about `density`.
    func testRescalingKeepsTheExpectedValue() {
        let x = Self.deltas()
        let mean = x.array.reduce(0.0) { $0 + Double($1) } / Double(x.count)
        XCTAssertEqual(mean, 1, accuracy: 0.01)
        for density in [0.1, 0.3, 0.7] {
            let rescaled = prune(x, density: density, rescale: true).array.reduce(0.0) { $0 + Double($1) } / Double(x.count)
            XCTAssertEqual(rescaled, mean, accuracy: 0.03 * mean, "density \(density)")
            let plain = prune(x, density: density).array.reduce(0.0) { $0 + Double($1) } / Double(x.count)
            XCTAssertEqual(plain, density * mean, accuracy: 0.03 * mean, "density \(density) without rescale")
        }
    }

    /// (b) Different seeds (or stream keys) give different masks; the same seed and key the same mask.
    func testDifferentSeedsGiveDifferentMasks() {
        let x = Self.deltas(count: 100_000)
        func mask(seed: UInt64, key: UInt64) -> [Bool] { prune(x, density: 0.5, seed: seed, key: key).array.map { $0 != 0 } }
        let reference = mask(seed: 1, key: 1)
        XCTAssertEqual(mask(seed: 1, key: 1), reference)
        for other in [mask(seed: 2, key: 1), mask(seed: 1, key: 2)] {
            let differing = zip(reference, other).filter { $0 != $1 }.count
            // Independent masks of density 0.5 differ in about half the elements.
            XCTAssertEqual(Double(differing) / Double(x.count), 0.5, accuracy: 0.02)
        }
    }

    /// The same seed gives the same bytes for any thread count (several blocks, a partial last one).
    func testSameSeedGivesSameBytesForAnyThreadCount() {
        let x = Self.deltas(count: 3 * Parallel.blockSize + 123)
        for dtype in [DType.f32, .bf16] {
            let reference = RandomPruneKernel.prune(x, density: 0.3, rescale: true, seed: 5, key: 9, dtype: dtype,
                                                    parallel: Parallel(threads: 1)).array.map(\.bitPattern)
            for threads in [2, 3, 8] {
                let bits = RandomPruneKernel.prune(x, density: 0.3, rescale: true, seed: 5, key: 9, dtype: dtype,
                                                   parallel: Parallel(threads: threads)).array.map(\.bitPattern)
                XCTAssertTrue(bits == reference, "\(dtype) differs with \(threads) threads")
            }
        }
    }

    func testDensityZeroKeepsNothingAndDensityOneEverything() {
        let x = Self.deltas(count: 1000)
        XCTAssertEqual(prune(x, density: 0, rescale: true).array, [Float](repeating: 0, count: 1000))
        XCTAssertEqual(prune(x, density: 1, rescale: true).array.map(\.bitPattern), x.array.map(\.bitPattern))
    }
}
