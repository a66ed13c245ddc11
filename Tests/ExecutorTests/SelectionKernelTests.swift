@testable import Executor
import IR
import Planner
import XCTest

/// The variance top-k and arcee_fusion selections, and the state every selection kernel holds.
final class SelectionKernelTests: XCTestCase {
    /// mergekit's `sce_mask` by sorting: the k largest nonzero variances, equal ones by lower index.
    func referenceTopK(_ xs: [[Float]], fraction: Double) -> [Float] {
        let n = xs[0].count
        let variance: [Float] = (0..<n).map { i in
            let mean = xs.reduce(0.0) { $0 + Double($1[i]) } / Double(xs.count)
            return Float(xs.reduce(0.0) { $0 + (Double($1[i]) - mean) * (Double($1[i]) - mean) } / Double(xs.count))
        }
        let order = (0..<n).filter { variance[$0] != 0 }.sorted { (-variance[$0], $0) < (-variance[$1], $1) }
        let k = min(order.count, Int(Float(order.count) * Float(fraction)))
        var out = [Float](repeating: 0, count: n)
        for i in order.prefix(k) { out[i] = 1 }
        return out
    }

    /// Variances 1, 1, 1, 1, 0, 0 in rows of one: the equal ones are taken from the lowest index, across chunks.
    func testVarianceTopKTakesEqualVariancesFromTheLowerIndex() throws {
        let xs: [[Float]] = [[1, 1, 1, 1, 0, 1], [-1, -1, -1, -1, 0, 1]]
        for (chunkRows, threads) in [(1, 1), (4, 2), (6, 3)] {
            let topK = { (f: Double) in
                try runChunked(.varianceTopK(fraction: f), xs, shape: [6, 1], threads: threads, chunkRows: chunkRows)
            }
            XCTAssertEqual(try topK(0.5), [1, 1, 0, 0, 0, 0])
            XCTAssertEqual(try topK(0.75), [1, 1, 1, 0, 0, 0])
            XCTAssertEqual(try topK(0.999), [1, 1, 1, 0, 0, 0], "⌊4 · 0.999⌋ = 3")
        }
    }

    /// Equal operands have no nonzero variance, so nothing is kept.
    func testVarianceTopKOfEqualOperandsIsEmpty() throws {
        let x = pseudoRandom(50, seed: 3)
        XCTAssertEqual(try runChunked(.varianceTopK(fraction: 0.5), [x, x], shape: [10, 5], chunkRows: 2),
                       [Float](repeating: 0, count: 50))
    }

    /// 1601 × 123 (more than three blocks, ragged last one) with many equal variances: the sort's result for
    /// any chunking and thread count.
    func testVarianceTopKMatchesASortForAnyChunking() throws {
        let n = 1601 * 123
        let xs = [pseudoRandom(n, seed: 21), pseudoRandom(n, seed: 22).map { $0.rounded() }, [Float](repeating: 0, count: n)]
        XCTAssertEqual(try runChunked(.varianceTopK(fraction: 0.37), xs, shape: [1601, 123], threads: 2, chunkRows: 50),
                       referenceTopK(xs, fraction: 0.37))
        try assertChunkInvariant(.varianceTopK(fraction: 0.37), xs, shape: [1601, 123], dtype: .bf16)
    }

    /// Row-local importances over chunks of whole rows; bf16 output; a 3-D tensor (rows of its last dimension).
    func testArceeFusionIsChunkInvariant() throws {
        let n = 1601 * 123
        let a = pseudoRandom(n, seed: 31), b = pseudoRandom(n, seed: 32).map { $0 * 0.5 }
        try assertChunkInvariant(.arceeFusion, [a, b], shape: [1601, 123], dtype: .bf16)
        try assertChunkInvariant(.arceeFusion, [Array(a[0..<2520]), Array(b[0..<2520])], shape: [40, 9, 7])
        let zero = [Float](repeating: 0, count: 60)
        XCTAssertEqual(try runChunked(.arceeFusion, [zero, zero], shape: [12, 5], chunkRows: 5), zero)
    }

    /// Drives `op`'s kernel by hand over chunks of `chunkRows` rows (every pass, then one sweep) with its state
    /// counted on its own; returns that state's peak.
    func statePeak(_ op: Op, _ operands: [[Float]], shape: [Int], threads: Int, chunkRows: Int) throws -> Int {
        let count = shape.reduce(1, *)
        let state = MemoryAccount()
        let context = KernelContext(shape: shape, dtype: .f32, parallel: Parallel(threads: threads), memory: state)
        let kernel = KernelFactory.kernel(for: op, operandCount: operands.count, context: context)
        let chunk = chunkRows * count / shape[0]
        let bases = operands.map { values in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            p.initialize(from: values, count: count)
            return p
        }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
        defer {
            bases.forEach { $0.deallocate() }
            out.deallocate()
        }
        let chunks = stride(from: 0, to: count, by: chunk).map { start in
            ChunkOperands(pointers: bases.map { UnsafePointer($0 + start) }, range: start..<min(count, start + chunk))
        }
        while kernel.beginPass() {
            for c in chunks { try kernel.observe(c) }
            try kernel.endPass()
        }
        kernel.beginSweep()
        for c in chunks { try kernel.produce(c, into: out) }
        return state.peakBytes
    }

    /// The planner's bound of each selection kernel's state holds for several thread counts and chunkings.
    func testStateStaysWithinThePlannersBound() throws {
        let shape = [1601, 123]
        let n = shape[0] * shape[1]
        let x = pseudoRandom(n, seed: 41), y = pseudoRandom(n, seed: 42)
        let cases: [(Op, [[Float]])] = [
            (.magnitudePrune(keep: (n / 2)..<n, rescale: true), [x]),
            (.magnitudePrune(keep: 0..<n, rescale: true), [x]),
            (.varianceTopK(fraction: 0.3), [x, y]),
            (.arceeFusion, [x, y]),
        ]
        for (op, operands) in cases {
            for (threads, chunkRows) in [(1, 1601), (2, 100), (3, 7)] {
                let peak = try statePeak(op, operands, shape: shape, threads: threads, chunkRows: chunkRows)
                let bound = op.streamingStateBytes(shape: shape, operands: operands.count, threads: threads)
                XCTAssertGreaterThan(peak, 0, op.mnemonic)
                XCTAssertLessThanOrEqual(peak, bound, "\(op.mnemonic), \(threads) threads")
            }
        }
    }
}
