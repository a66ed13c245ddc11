@testable import Executor
import Checkpoint
import IR
import XCTest

/// model_stock in bf16 against PyTorch: the expected bit patterns are the outputs of mergekit's
/// `model_stock_merge_method` body run by torch 2.15 on the same `pseudoRandom` inputs (base `0.1·r₁`, fine-tunes
/// `base + 0.01·r₂…₄`, all rounded to bf16), whole-tensor and filter-wise.
final class ModelStockHalfPrecisionTests: XCTestCase {
    func inputs() -> [[Float]] {
        let n = 32
        let base = pseudoRandom(n, seed: 1).map { DTypeConversion.round($0 * Float(0.1), to: .bf16) }
        let fineTunes = (0..<3).map { k in
            zip(base, pseudoRandom(n, seed: UInt64(k + 2))).map { DTypeConversion.round($0 + $1 * Float(0.01), to: .bf16) }
        }
        return [base] + fineTunes
    }

    func assertBits(filterWise: Bool, _ expected: [UInt16], file: StaticString = #filePath, line: UInt = #line) throws {
        for chunkRows in [1, 4] {
            let out = try runChunked(.modelStock(filterWise: filterWise), inputs(), shape: [4, 8], dtype: .bf16,
                                     chunkRows: chunkRows)
            XCTAssertEqual(out.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }, expected,
                           "filter_wise \(filterWise), \(chunkRows) rows per chunk", file: file, line: line)
        }
    }

    func testWholeTensorMatchesTorch() throws {
        try assertBits(filterWise: false, [0xbdbb, 0xbdb1, 0xbd1d, 0x3d84, 0xbd1a, 0x3dba, 0xbdbd, 0xbd33, 0xbc86, 0x3c1e, 0x3cc4, 0xbd10, 0x3d76, 0x3d1b, 0xbda0, 0xba0e, 0xbdcc, 0xbd99, 0x3d8a, 0x3cf6, 0xbd4e, 0x3cbb, 0x3d90, 0x3d84, 0x3cdc, 0xbd43, 0xbd71, 0xbdbc, 0xbcc4, 0x3d23, 0xbdc5, 0x3d5e])
    }

    func testFilterWiseMatchesTorch() throws {
        try assertBits(filterWise: true, [0xbdba, 0xbdb2, 0xbd1a, 0x3d84, 0xbd1f, 0x3db8, 0xbdbd, 0xbd36, 0xbc84, 0x3c1e, 0x3cc8, 0xbd1c, 0x3d7b, 0x3d18, 0xbd94, 0xba9b, 0xbdd6, 0xbd96, 0x3d8d, 0x3cda, 0xbd67, 0x3ca1, 0x3d92, 0x3d8c, 0x3cb8, 0xbd4e, 0xbd7a, 0xbdc2, 0xbd06, 0x3d18, 0xbdc8, 0x3d68])
    }

    /// The terms of the whole-tensor pass (two, three and four fine-tunes: three take their own loop) are their
    /// definition element by element: each offset `x_k − base` rounded, then each pair's product of rounded
    /// offsets rounded, pairs `i < j` in order; on ranges that end inside a group of eight lanes.
    func testTermsAreRoundedOffsetsAndTheirProducts() {
        for dtype in [DType.bf16, .f16] {
            for fineTunes in 2...4 {
                let count = 45
                let base = pseudoRandom(count, seed: 7).map { DTypeConversion.round($0, to: dtype) }
                let models = [base] + (0..<fineTunes).map { k in
                    pseudoRandom(count, seed: UInt64(20 + k)).map { DTypeConversion.round($0 * 3, to: dtype) }
                }
                let streams = ModelStockChunkKernel.HalfPrecision.width(fineTunes: fineTunes)
                let range = 3..<count
                var out = [Float](repeating: .nan, count: streams * count)
                withPointers(models) { xs in
                    out.withUnsafeMutableBufferPointer {
                        ModelStockChunkKernel.HalfPrecision.terms(xs, dtype, range, into: $0.baseAddress!, capacity: count)
                    }
                }
                func r(_ v: Float) -> Float { DTypeConversion.round(v, to: dtype) }
                for e in range {
                    let offsets = (1...fineTunes).map { r(models[$0][e] - base[e]) }
                    var expected = offsets
                    for i in 0..<fineTunes { for j in (i + 1)..<fineTunes { expected.append(r(offsets[i] * offsets[j])) } }
                    XCTAssertEqual((0..<streams).map { out[$0 * count + e].bitPattern }, expected.map(\.bitPattern),
                                   "\(dtype), \(fineTunes) fine-tunes, element \(e)")
                }
            }
        }
    }

    private func withPointers(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) -> Void) {
        let buffers = arrays.map { a in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: a.count)
            p.initialize(from: a, count: a.count)
            return p
        }
        defer { buffers.forEach { $0.deallocate() } }
        body(buffers.map { UnsafePointer($0) })
    }
}
