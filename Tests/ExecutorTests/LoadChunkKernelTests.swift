import Checkpoint
@testable import Executor
import IR
import XCTest

/// A reader of a made-up format: tensors at arbitrary (unaligned) offsets of one in-memory "file", as another
/// format's reader would report them. The load kernel must read only through the `CheckpointReader` protocol.
final class BlobReader: CheckpointReader, @unchecked Sendable {
    let directory = "/blob-checkpoint"
    let filePaths = ["/blob-checkpoint/blob"]
    let tensorNames: [String]
    private let tensors: [String: StoredTensor]
    private let bytes: [UInt8]
    /// Bytes of the "file" that can be read; less than all of them simulates a truncated file.
    var readable: Int

    init(_ layout: [(name: String, dtype: DType, shape: [Int], values: [Float])]) {
        var bytes: [UInt8] = [0x55, 0x55, 0x55]  // odd padding: nothing is aligned
        var tensors: [String: StoredTensor] = [:]
        for t in layout {
            var encoded = [UInt8](repeating: 0, count: t.values.count * t.dtype.byteSize)
            t.values.withUnsafeBufferPointer { src in
                encoded.withUnsafeMutableBytes { DTypeConversion.encode(src.baseAddress!, count: t.values.count, as: t.dtype, into: $0.baseAddress!) }
            }
            tensors[t.name] = StoredTensor(name: t.name, dtype: t.dtype, shape: t.shape, fileIndex: 0,
                                           fileOffset: bytes.count, byteCount: encoded.count)
            bytes += encoded + [0x77]
        }
        self.tensorNames = layout.map(\.name)
        self.tensors = tensors
        self.bytes = bytes
        self.readable = bytes.count
    }

    func tensor(_ name: String) -> StoredTensor? { tensors[name] }

    func readBytes(fileIndex: Int, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError) {
        guard offset + count <= readable else { throw .fileTooShort(path: filePaths[fileIndex], fileSize: readable) }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
    }
}

final class LoadChunkKernelTests: XCTestCase {
    /// Reads `name` through a load kernel, `chunkRows` rows per chunk on `threads` threads.
    private func load(_ reader: any CheckpointReader, _ name: String, chunkRows: Int?, threads: Int) throws -> [Float] {
        let stored = try XCTUnwrap(reader.tensor(name))
        let memory = MemoryAccount()
        let context = KernelContext(shape: stored.shape, dtype: stored.dtype, parallel: Parallel(threads: threads),
                                    memory: memory)
        let kernel = try LoadChunkKernel(reader: reader, tensor: name, staging: InputStaging(memory: memory), context: context)
        return try runChunked(kernel, [], shape: stored.shape, passes: 0, chunkRows: chunkRows, memory: memory)
    }

    func testReadsAnyFormatsByteRangesInParallelBlocks() throws {
        let big = pseudoRandom(300 * 700, seed: 3)  // 210,000 elements: several 65,536-element blocks per chunk
        let small = pseudoRandom(12, seed: 4)
        let reader = BlobReader([("big", .bf16, [300, 700], big), ("small", .f16, [3, 4], small), ("f", .f32, [12], small)])
        for (name, values, dtype) in [("big", big, DType.bf16), ("small", small, .f16), ("f", small, .f32)] {
            let expected = values.map { DTypeConversion.round($0, to: dtype).bitPattern }
            for (rows, threads) in [(nil, 1), (1, 2), (97, 3), (nil, 2)] as [(Int?, Int)] {
                XCTAssertEqual(try load(reader, name, chunkRows: rows, threads: threads).map(\.bitPattern), expected,
                               "\(name), \(rows.map(String.init) ?? "all") rows per chunk, \(threads) threads")
            }
        }
    }

    func testMissingTensorAndFailedReadNameTheCheckpoint() throws {
        let reader = BlobReader([("a", .f32, [2], [1, 2])])
        let context = KernelContext(shape: [2], dtype: .f32, parallel: Parallel(threads: 1), memory: MemoryAccount())
        XCTAssertThrowsError(try LoadChunkKernel(reader: reader, tensor: "zz", staging: InputStaging(memory: MemoryAccount()),
                                                 context: context)) { error in
            XCTAssertEqual(String(describing: error), "tensor zz is not in the checkpoint /blob-checkpoint")
        }
        reader.readable = 5
        XCTAssertThrowsError(try load(reader, "a", chunkRows: nil, threads: 2)) { error in
            guard case .checkpoint(.fileTooShort(let path, _))? = error as? ExecutionError else {
                return XCTFail("expected the reader's error, got \(error)")
            }
            XCTAssertEqual(path, "/blob-checkpoint/blob")
        }
    }
}
