@testable import Executor
import IR
import XCTest

/// The new merge kernels give the same bytes for any thread count (tensors span several blocks).
final class KernelDeterminismTests: XCTestCase {
    /// 1601 rows of 123: more than three blocks, with a partial last block.
    static let count = 123 * 1601

    func random(_ seed: UInt64) -> TensorBuffer {
        var state = seed
        let b = TensorBuffer(count: Self.count)
        for i in 0..<Self.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            b.pointer[i] = Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
        return b
    }

    func assertSameForAnyThreadCount(_ name: String, _ run: (Parallel) throws -> TensorBuffer) rethrows {
        let reference = try run(Parallel(threads: 1)).array.map(\.bitPattern)
        for threads in [2, 3, 8] {
            let bits = try run(Parallel(threads: threads)).array.map(\.bitPattern)
            XCTAssertTrue(bits == reference, "\(name) differs with \(threads) threads")
        }
    }

    func testKernelsAreThreadCountIndependent() throws {
        let a = random(1), b = random(2), c = random(3)
        let rows = [1601, 123]
        assertSameForAnyThreadCount("variance_topk") { MaskKernels.varianceTopK([a, b, c], fraction: 0.3, parallel: $0) }
        for axis in [SlerpAxis.flattened, .lastDim, .firstDim] {
            assertSameForAnyThreadCount("nuslerp \(axis)") {
                NuslerpKernel.nuslerp(t: 0.3, a, b, shape: rows, axis: axis, dtype: .f32, parallel: $0)
            }
        }
        try assertSameForAnyThreadCount("multislerp") {
            try MultislerpKernel.merge([a, b, c], weights: [0.5, 0.3, 0.2], eps: 1e-8, dtype: .f32, parallel: $0)
        }
        assertSameForAnyThreadCount("karcher") { KarcherKernel.merge([a, b, c], maxIter: 10, tol: 1e-5, dtype: .f32, parallel: $0) }
        assertSameForAnyThreadCount("arcee_fusion") {
            ArceeFusionKernel.merge(base: a, other: b, rowLength: 123, dtype: .f32, parallel: $0)
        }
    }
}
