import Checkpoint
@testable import Executor
import IR
import XCTest

/// `vocab_gather` reads the rows it picks from its sources, rounds them to the node's dtype, averages rows picked from
/// several models in that dtype (mergekit's `embed = embed + row; embed /= count`), zeroes rows without a pick and
/// fills padding rows with the mean of the vocabulary's rows — the same bytes for any chunk size and thread count.
final class VocabularyGatherKernelTests: XCTestCase {
    func testRowsMeansZerosAndPaddingForAnyChunkSize() throws {
        let a = pseudoRandom(4 * 3, seed: 11), b = pseudoRandom(5 * 3, seed: 12)
        let reader = BlobReader([("a", .f32, [4, 3], a), ("b", .bf16, [5, 3], b)])
        let gather = VocabularyGather(sources: [GatherSource(model: 0, tensor: "a", type: TensorType(dtype: .f32, shape: [4, 3])),
                                                GatherSource(model: 0, tensor: "b", type: TensorType(dtype: .bf16, shape: [5, 3]))],
                                      rows: [[RowPick(source: 0, row: 0)], [RowPick(source: 0, row: 1)], [RowPick(source: 0, row: 2)],
                                             [RowPick(source: 1, row: 4)], [RowPick(source: 0, row: 3), RowPick(source: 1, row: 1)], []],
                                      paddingRows: 2)
        func round(_ x: Float) -> Float { DTypeConversion.round(x, to: .bf16) }
        func row(_ values: [Float], _ r: Int) -> [Float] { (0..<3).map { round(values[r * 3 + $0]) } }
        let bRows = b.map { DTypeConversion.round($0, to: .bf16) }
        var expected = row(a, 0) + row(a, 1) + row(a, 2) + row(bRows, 4)
        expected += (0..<3).map { j in round(round(round(0 + row(a, 3)[j]) + row(bRows, 1)[j]) / 2) }
        expected += [0, 0, 0]
        let mean = (0..<3).map { j in round(Float((0..<6).reduce(0.0) { $0 + Double(expected[$1 * 3 + j]) } / 6)) }
        expected += mean + mean
        for (rows, threads) in [(nil, 1), (1, 2), (3, 1), (5, 2)] as [(Int?, Int)] {
            let memory = MemoryAccount()
            let context = KernelContext(shape: [8, 3], dtype: .bf16, parallel: Parallel(threads: threads), memory: memory)
            let kernel = try VocabularyGatherChunkKernel(gather: gather, models: [reader], staging: InputStaging(memory: memory),
                                                         context: context)
            let values = try runChunked(kernel, [], shape: [8, 3], passes: 1, chunkRows: rows, memory: memory)
            XCTAssertEqual(values.map(\.bitPattern), expected.map(\.bitPattern), "chunks of \(rows ?? 8) rows, \(threads) threads")
        }
        XCTAssertEqual(VocabularyGatherChunkKernel.cost(gather, shape: [8, 3]),
                       KernelCost(initialBytes: 12, passBytes: [48], sweepBytes: 24, stagingBytesPerElement: 4))
    }

    func testAStoredShapeOtherThanThePlansIsAPlanMismatch() throws {
        let reader = BlobReader([("a", .f32, [4, 3], pseudoRandom(12, seed: 1))])
        let gather = VocabularyGather(sources: [GatherSource(model: 0, tensor: "a", type: TensorType(dtype: .f32, shape: [5, 3]))],
                                      rows: [[RowPick(source: 0, row: 0)]])
        let memory = MemoryAccount()
        let context = KernelContext(shape: [1, 3], dtype: .f32, parallel: Parallel(threads: 1), memory: memory)
        XCTAssertThrowsError(try VocabularyGatherChunkKernel(gather: gather, models: [reader], staging: InputStaging(memory: memory),
                                                             context: context)) { error in
            XCTAssertTrue("\(error)".contains("the plan gathers rows of f32[5,3]"), "\(error)")
        }
    }
}
