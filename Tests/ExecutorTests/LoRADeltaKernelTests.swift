import Checkpoint
@testable import Executor
import IR
import XCTest

/// The LoRA update kernel: MKL's summation blocks, PyTorch's f32 arithmetic, any chunking, the declared state.
final class LoRADeltaKernelTests: XCTestCase {
    /// The blocks measured against PyTorch's MKL `sgemm` (see the kernel's documentation).
    func testRankBlocksFollowMKL() {
        XCTAssertEqual(LoRADeltaChunkKernel.rankBlocks(8), [0..<8])
        XCTAssertEqual(LoRADeltaChunkKernel.rankBlocks(192), [0..<192])
        XCTAssertEqual(LoRADeltaChunkKernel.rankBlocks(193), [0..<96, 96..<192, 192..<193])
        XCTAssertEqual(LoRADeltaChunkKernel.rankBlocks(256), [0..<128, 128..<256])
        XCTAssertEqual(LoRADeltaChunkKernel.rankBlocks(384), [0..<192, 192..<384])
        XCTAssertEqual(LoRADeltaChunkKernel.rankBlocks(400), [0..<192, 192..<384, 384..<400])
        XCTAssertEqual(LoRADeltaChunkKernel.rankBlocks(701), [0..<192, 192..<384, 384..<576, 576..<701])
    }

    /// `scale · (B · A)` (or its transpose) element by element: an f32 fused multiply-add chain per block, block
    /// sums added in order, times the f32 scale.
    private func reference(b: [Float], a: [Float], rows: Int, columns: Int, rank: Int, scale: Double,
                           transposed: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: rows * columns)
        for i in 0..<rows {
            for j in 0..<columns {
                var total: Float = 0
                for (n, block) in LoRADeltaChunkKernel.rankBlocks(rank).enumerated() {
                    var sum: Float = 0
                    for k in block {
                        // transposed: out[i, j] = Σ B[j, k] · A[k, i], with B [columns, rank] and A [rank, rows].
                        let (x, y) = transposed ? (a[k * rows + i], b[j * rank + k]) : (b[i * rank + k], a[k * columns + j])
                        sum = sum.addingProduct(x, y)
                    }
                    total = n == 0 ? sum : total + sum
                }
                out[i * columns + j] = total * Float(scale)
            }
        }
        return out
    }

    func testProductMatchesPyTorchsArithmeticForAnyChunkingAndHoldsItsDeclaredState() throws {
        for (rows, columns, rank, transposed) in [(7, 13, 3, false), (9, 20, 200, false), (12, 5, 4, true),
                                                  (6, 17, 401, true)] {
            let (bRows, aColumns) = transposed ? (columns, rows) : (rows, columns)
            let b = pseudoRandom(bRows * rank, seed: 1), a = pseudoRandom(rank * aColumns, seed: 2)
            let reader = BlobReader([("b", .f32, [bRows, rank], b), ("a", .bf16, [rank, aColumns], a)])
            let aRounded = a.map { DTypeConversion.round($0, to: .bf16) }
            let scale = 16 / Double(rank).squareRoot()
            let expected = reference(b: b, a: aRounded, rows: rows, columns: columns, rank: rank, scale: scale,
                                     transposed: transposed).map(\.bitPattern)
            for (chunkRows, threads) in [(nil, 1), (1, 2), (4, 3)] as [(Int?, Int)] {
                let memory = MemoryAccount()
                let context = KernelContext(shape: [rows, columns], dtype: .f32, parallel: Parallel(threads: threads),
                                            memory: memory)
                let kernel = try LoRADeltaChunkKernel(reader: reader, a: "a", b: "b", rank: rank, scale: scale,
                                                      transposed: transposed, context: context)
                let cost = LoRADeltaChunkKernel.cost(rank: rank, shape: [rows, columns], threads: threads)
                XCTAssertEqual(memory.liveBytes, cost.initialBytes, "declared state, rank \(rank)")
                let values = try runChunked(kernel, [], shape: [rows, columns], passes: 0, chunkRows: chunkRows,
                                            memory: memory)
                XCTAssertEqual(values.map(\.bitPattern), expected, "rank \(rank), \(chunkRows ?? rows) rows, \(threads) threads")
            }
        }
    }

    /// Factors whose shapes do not make the node's shape with the rank are a plan mismatch, naming them.
    func testFactorsOfAnotherShapeAreAPlanMismatch() {
        let reader = BlobReader([("b", .f32, [4, 2], pseudoRandom(8, seed: 1)), ("a", .f32, [2, 3], pseudoRandom(6, seed: 2))])
        let context = KernelContext(shape: [4, 5], dtype: .f32, parallel: Parallel(threads: 1), memory: MemoryAccount())
        XCTAssertThrowsError(try LoRADeltaChunkKernel(reader: reader, a: "a", b: "b", rank: 2, scale: 1, transposed: false,
                                                      context: context)) { error in
            XCTAssertTrue("\(error)".contains("do not give [4, 5] with rank 2"), "\(error)")
        }
    }
}
