@testable import Executor
import IR
import XCTest

/// Hand-computed cases for the slerp and model_stock kernels.
final class SlerpAndModelStockTests: XCTestCase {
    let r = Float(0.5).squareRoot()
    let root2 = Float(2).squareRoot()

    func assertClose(_ actual: [Float], _ expected: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, file: file, line: line)
        for (a, e) in zip(actual, expected) {
            XCTAssertEqual(a, e, accuracy: 1e-6, "\(actual) vs \(expected)", file: file, line: line)
        }
    }

    /// Orthogonal vectors at t = 0.5: θ = π/2, both coefficients sin(π/4) / sin(π/2); norms are not rescaled.
    func testSlerpOfOrthogonalVectors() throws {
        assertClose(try runChunked(.slerp(t: 0.5), [[1, 0], [0, 1]], shape: [2]), [r, r])
        assertClose(try runChunked(.slerp(t: 0.5), [[2, 0], [0, 2]], shape: [1, 2]), [2 * r, 2 * r])
        // Rounded to bf16: 0.70710677 → 0.70703125.
        XCTAssertEqual(try runChunked(.slerp(t: 0.5), [[1, 0], [0, 1]], shape: [2], dtype: .bf16),
                       [0.70703125, 0.70703125])
    }

    /// |cos| > 0.9995: linear interpolation, also for opposite directions.
    func testSlerpOfColinearVectorsIsLinear() throws {
        assertClose(try runChunked(.slerp(t: 0.25), [[1, 2], [2, 4]], shape: [2]), [1.25, 2.5])
        assertClose(try runChunked(.slerp(t: 0.25), [[1, 2], [-1, -2]], shape: [2]), [0.5, 1])
    }

    /// A zero vector keeps norm 1, so cos = 0 and θ = π/2: the result is sin(t·π/2)·b; two zero vectors give 0.
    func testSlerpWithAZeroVector() throws {
        let s = Float(0.3826834323650898)
        assertClose(try runChunked(.slerp(t: 0.25), [[0, 0], [3, 4]], shape: [2]), [3 * s, 4 * s])
        XCTAssertEqual(try runChunked(.slerp(t: 0.5), [[0, 0], [0, 0]], shape: [2]), [0, 0])
    }

    /// Offsets (1, 0) and (1, 1) from the base: cos = 1/√2, t = 2·cos / (1 + cos) = 2√2 − 2, so the result is
    /// base + t·(mean offset) = (1, 1) + t·(1, 0.5).
    func testModelStockPullsTheAverageByTheAngle() throws {
        let out = try runChunked(.modelStock(filterWise: false), [[1, 1], [2, 1], [2, 2]], shape: [2])
        assertClose(out, [2 * root2 - 1, root2])
    }

    /// Filter-wise, each row has its own factor; row 1's offsets are opposite (cos = −1), so 1 + (n − 1)·cos = 0
    /// and the row keeps the base.
    func testModelStockFilterWise() throws {
        let base: [Float] = [1, 1, 0, 0], a: [Float] = [2, 1, 1, 0], b: [Float] = [2, 2, -1, 0]
        let out = try runChunked(.modelStock(filterWise: true), [base, a, b], shape: [2, 2], chunkRows: 1)
        assertClose(out, [2 * root2 - 1, root2, 0, 0])
        // Over the whole tensor the offsets (1, 0, 1, 0) and (1, 1, −1, 0) are orthogonal: t = 0, the base.
        assertClose(try runChunked(.modelStock(filterWise: false), [base, a, b], shape: [2, 2]), base)
    }

    /// Fine-tunes equal to the base have zero offsets: cos = 0 / 1e-6 = 0, t = 0, the base.
    func testModelStockOfUnchangedFineTunesIsTheBase() throws {
        let base: [Float] = [0.5, -2, 3]
        XCTAssertEqual(try runChunked(.modelStock(filterWise: false), [base, base, base], shape: [3]), base)
        XCTAssertEqual(try runChunked(.modelStock(filterWise: true), [base, base, base], shape: [1, 3]), base)
    }
}
