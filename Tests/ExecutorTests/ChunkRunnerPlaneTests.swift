@testable import Executor
import IR
import XCTest

/// `ChunkRunner`'s handover of kept bf16 planes (`ChunkOperands.planes`): a value kept whole as a bf16 plane and read
/// in a later sweep only by a kernel that reads planes is handed over packed, with the chunk buffer the plan counts
/// for it still taken, so that the run holds the same bytes with and without the handover.
final class ChunkRunnerPlaneTests: XCTestCase {
    /// Makes one statistics pass that ignores its operand, then outputs its operand's values: from the plane when
    /// handed one (`readsBF16Planes`), else from the chunk buffer; counts the chunks that came as planes.
    private final class PlaneReader: ChunkKernel {
        private var passes = 0
        var packedChunks = 0

        func beginPass() -> Bool {
            passes += 1
            return passes == 1
        }

        var readsBF16Planes: Bool { true }

        func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
            if let plane = operands.plane(0) {
                packedChunks += 1
                BF16Rounding.unpack(plane, into: out - operands.range.lowerBound, operands.range)
            } else {
                out.update(from: operands.pointers[0], count: operands.range.count)
            }
        }
    }

    /// Runs a bf16 value (entry 0, kept whole as a plane) and its reader (entry 1) over 6 rows of 50, 2 rows a chunk:
    /// the statistics sweep computes and packs the value, the output sweep hands it over or unpacks it. Returns the
    /// output, the peak bytes held and the chunks the reader got as planes.
    private func run(handingOver: Bool) throws -> (values: [Float], peak: Int, packed: Int) {
        let n = 300
        let values: [Float] = (0..<n).map { i -> Float in
            let bits = UInt32(0x3F80 + i % 97) << 16
            let sign: Float = i % 2 == 0 ? 1 : -1
            return Float(bitPattern: bits) * sign
        }
        let reader = PlaneReader()
        let memory = MemoryAccount()
        let entries = [ChunkRunner.Entry(kernel: ArrayChunkKernel(values), operands: [], frees: []),
                       ChunkRunner.Entry(kernel: reader, operands: [0], frees: [0, 1])]
        let sweeps = [Sweep(observers: [1], computes: [0]), Sweep(observers: [], computes: [0, 1])]
        let runner = ChunkRunner(entries: entries, sweeps: sweeps, elementCount: n, chunkElements: 100, memory: memory,
                                 retain: [0], planes: [0: .bf16], handsOverPlanes: handingOver)
        var out = [Float](repeating: .nan, count: n)
        try runner.run(outputs: [1]) { _, range, chunk throws(ExecutionError) in
            for i in range { out[i] = chunk[i - range.lowerBound] }
        }
        XCTAssertEqual(out.map { $0.bitPattern }, values.map { $0.bitPattern })
        XCTAssertEqual(runner.planesHandedOver, handingOver ? 1 : 0, "one plane, handed over in one sweep")
        return (out, memory.peakBytes, reader.packedChunks)
    }

    func testHandedOverPlaneKeepsTheValuesAndThePeak() throws {
        let handed = try run(handingOver: true)
        let unpacked = try run(handingOver: false)
        XCTAssertEqual(handed.packed, 3, "every chunk of the output sweep came as the plane")
        XCTAssertEqual(unpacked.packed, 0)
        XCTAssertEqual(handed.values.map(\.bitPattern), unpacked.values.map(\.bitPattern))
        // The output sweep holds the value's chunk buffer and the reader's, beside the plane: its peak.
        XCTAssertEqual(handed.peak, unpacked.peak, "the handed-over plane's chunk buffer is still taken")
        XCTAssertGreaterThanOrEqual(handed.peak, 2 * 100 * 4 + 300 * 2)
    }
}
