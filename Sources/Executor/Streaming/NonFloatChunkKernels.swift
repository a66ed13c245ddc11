import Checkpoint
import Foundation
import IR
import Synchronization

/// Reads an integer or BOOL tensor chunk by chunk as its stored bytes, straight into the chunk buffer (which holds
/// `ChunkGroup.bufferBytesPerElement` ≥ the dtype's size per element): no staging and no conversion, so an int64
/// beyond 2^24 arrives unchanged. The buffer's bytes are the elements, little-endian, packed from its start.
final class RawLoadChunkKernel: ChunkKernel {
    /// The model's reader.
    private let reader: any CheckpointReader
    /// Where the tensor is.
    private let stored: StoredTensor
    /// The worker threads reads are split over.
    private let parallel: Parallel

    /// The kernel of `load` of tensor `name` from `reader`.
    /// - Throws: `ExecutionError.checkpoint(.tensorNotInCheckpoint)` when the checkpoint has no such tensor.
    init(reader: any CheckpointReader, tensor name: String, context: KernelContext) throws(ExecutionError) {
        guard let stored = reader.tensor(name) else {
            throw .checkpoint(.tensorNotInCheckpoint(directory: reader.directory, tensor: name))
        }
        self.reader = reader
        self.stored = stored
        parallel = context.parallel
    }

    /// Reads elements `operands.range` (`range.count · dtype.byteSize` bytes) into `out` with `pread`, in parallel blocks.
    /// - Throws: `ExecutionError.checkpoint` naming the file and tensor for a read outside the tensor or a failed read.
    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        try StoredBlocks.read(stored, from: reader, elements: operands.range,
                              into: UnsafeMutableRawPointer(out).assumingMemoryBound(to: UInt8.self), parallel: parallel)
    }

    /// Reads go straight into the chunk buffer: no staging, no state.
    static let cost = KernelCost()
}

/// `copy_equal`: passes the first operand's bytes through and checks every other operand has the same bytes, as
/// mergekit's `copy_non_floating_buffer` requires (`torch.equal` on tensors of one dtype: equal bytes, as integers
/// and bools have one encoding per value).
final class CopyEqualChunkKernel: ChunkKernel {
    /// Bytes per element of the copied dtype.
    private let byteSize: Int

    /// The kernel for a node of integer or BOOL `context.dtype`.
    init(context: KernelContext) {
        byteSize = context.dtype.byteSize
    }

    /// Copies operand 0's `range.count · byteSize` bytes to `out`.
    /// - Throws: `ExecutionError.undefinedMerge` naming the first differing element and operand when an operand's
    ///   bytes differ (the executor adds the tensor's name).
    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let count = operands.range.count * byteSize
        let first = UnsafeRawPointer(operands.pointers[0])
        for k in 1..<operands.count {
            let other = UnsafeRawPointer(operands.pointers[k])
            if memcmp(first, other, count) != 0 {
                let bytes = (0..<count).first {
                    first.load(fromByteOffset: $0, as: UInt8.self) != other.load(fromByteOffset: $0, as: UInt8.self)
                } ?? 0
                throw .undefinedMerge(value: "", op: "copy_equal",
                                      "this integer or bool tensor differs between input 1 and input \(k + 1) "
                                      + "(first at element \(operands.range.lowerBound + bytes / byteSize)); mergekit "
                                      + "copies such tensors only when every input has the same values "
                                      + "(\"Non-floating buffer differs between inputs\")")
            }
        }
        UnsafeMutableRawPointer(out).copyMemory(from: first, byteCount: count)
    }

    /// No state: a comparison and a copy per chunk.
    static let cost = KernelCost()
}
