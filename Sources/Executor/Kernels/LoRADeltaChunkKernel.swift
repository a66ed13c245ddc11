import Checkpoint
import IR

/// A LoRA module's update `scale · (B · A)` (or its transpose) row chunk by row chunk (`Op.loraDelta`), as PEFT's
/// `LoraLayer.get_delta_weight` gets it from PyTorch on the CPU: `weight_B @ weight_A` in f32 through MKL's `sgemm`,
/// then `* scaling` with the scaling rounded to f32.
///
/// Both factors are read whole when the kernel is built and held as f32: `left` `[rows, rank]` (B, or Aᵀ when
/// transposed) and `right` `[rank, columns]` (A, or Bᵀ), so output row `i` is `Σₖ left[i, k] · right[k, ·]`.
/// Each element is summed as MKL's AVX-512 `sgemm` sums it (measured against PyTorch 2.15's MKL 2024.2 for ranks
/// 1–2049 on matrices of at least 4 rows and 16 columns): fused multiply-adds in rank order from zero within each
/// block of the rank (`rankBlocks`), the blocks' sums added in order.
final class LoRADeltaChunkKernel: ChunkKernel {
    private let context: KernelContext
    private let rank: Int
    private let scale: Float
    private let columns: Int
    private let left: AccountedBuffer<Float>
    private let right: AccountedBuffer<Float>
    /// One row of partial sums per worker, when the rank has more than one block.
    private let scratch: AccountedBuffer<Float>?
    private let blocks: [Range<Int>]

    /// Reads `a` and `b` of `reader` (a LoRA adapter) for a result of `context.shape` `[rows, columns]`.
    /// - Throws: `ExecutionError.checkpoint` for a tensor the adapter lacks or a failed read;
    ///   `.planMismatch` when the factors' shapes do not give the node's shape with `rank`.
    init(reader: any CheckpointReader, a: String, b: String, rank: Int, scale: Double, transposed: Bool,
         context: KernelContext) throws(ExecutionError) {
        guard let storedA = reader.tensor(a) else {
            throw .checkpoint(.tensorNotInCheckpoint(directory: reader.directory, tensor: a))
        }
        guard let storedB = reader.tensor(b) else {
            throw .checkpoint(.tensorNotInCheckpoint(directory: reader.directory, tensor: b))
        }
        let shape = context.shape
        let expected = transposed ? ([rank, shape[0]], [shape[1], rank]) : ([rank, shape[1]], [shape[0], rank])
        guard shape.count == 2, storedA.shape == expected.0, storedB.shape == expected.1 else {
            throw .planMismatch("LoRA factors \(a) \(storedA.shape) and \(b) \(storedB.shape) of \(reader.directory) "
                                + "do not give \(shape) with rank \(rank)")
        }
        self.context = context
        self.rank = rank
        self.scale = Float(scale)
        columns = shape[1]
        blocks = Self.rankBlocks(rank)
        left = context.memory.allocate(Float.self, count: shape[0] * rank, zeroed: false)
        right = context.memory.allocate(Float.self, count: rank * shape[1], zeroed: false)
        scratch = blocks.count > 1
            ? context.memory.allocate(Float.self, count: context.parallel.threads * shape[1], zeroed: false) : nil
        // left[i, k]: B[i, k], or A[k, i]; right[k, j]: A[k, j], or B[j, k].
        try Self.read(storedB, from: reader, into: transposed ? right.pointer : left.pointer, transposed: transposed)
        try Self.read(storedA, from: reader, into: transposed ? left.pointer : right.pointer, transposed: transposed)
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let range = operands.range
        let columns = self.columns
        let firstRow = range.lowerBound / columns
        let rows = range.count / columns
        let (rank, scale, dtype, blocks) = (self.rank, self.scale, context.dtype, self.blocks)
        let left = SendablePointer(UnsafePointer(self.left.pointer))
        let right = SendablePointer(UnsafePointer(self.right.pointer))
        let output = SendablePointer(out)
        let scratch = self.scratch.map { SendablePointer($0.pointer) }
        let workers = min(context.parallel.threads, rows)
        context.parallel.forEachRow(in: 0..<rows, workers: workers) { worker, r in
            let row = output.pointer + r * columns
            let coefficients = left.pointer + (firstRow + r) * rank
            Self.accumulate(coefficients, right.pointer, blocks[0], columns: columns, into: row)
            if let scratch {
                let partial = scratch.pointer + worker * columns
                for block in blocks.dropFirst() {
                    Self.accumulate(coefficients, right.pointer, block, columns: columns, into: partial)
                    for j in 0..<columns { row[j] += partial[j] }
                }
            }
            for j in 0..<columns { row[j] = DTypeConversion.round(row[j] * scale, to: dtype) }
        }
    }

    /// `out[j] = Σ_{k ∈ block} coefficients[k] · right[k, j]`, a fused multiply-add chain from zero in `k` order.
    private static func accumulate(_ coefficients: UnsafePointer<Float>, _ right: UnsafePointer<Float>,
                                   _ block: Range<Int>, columns: Int, into out: UnsafeMutablePointer<Float>) {
        let wide = columns - columns % 8
        var j = 0
        while j < wide {
            var acc = SIMD8<Float>(repeating: 0)
            for k in block {
                let r = UnsafeRawPointer(right + k * columns + j).loadUnaligned(as: SIMD8<Float>.self)
                acc = acc.addingProduct(SIMD8(repeating: coefficients[k]), r)
            }
            UnsafeMutableRawPointer(out + j).storeBytes(of: acc, as: SIMD8<Float>.self)
            j += 8
        }
        while j < columns {
            var acc: Float = 0
            for k in block { acc = acc.addingProduct(coefficients[k], right[k * columns + j]) }
            out[j] = acc
            j += 1
        }
    }

    /// The blocks of the rank MKL's AVX-512 `sgemm` sums separately and then adds in order: the whole rank up to
    /// 192; two halves of its even part up to 384 (an odd rank's last term a block of its own); blocks of 192 above.
    static func rankBlocks(_ rank: Int) -> [Range<Int>] {
        let block = 192
        if rank <= block { return [0..<rank] }
        if rank <= 2 * block {
            let half = rank / 2
            return [0..<half, half..<(2 * half)] + (rank % 2 == 1 ? [(2 * half)..<rank] : [])
        }
        return stride(from: 0, to: rank, by: block).map { $0..<min(rank, $0 + block) }
    }

    /// Reads the matrix `stored` `[m, n]` as f32 into `destination`, as it is or transposed (`[n, m]`), in pieces
    /// through a small staging buffer.
    private static func read(_ stored: StoredTensor, from reader: any CheckpointReader,
                             into destination: UnsafeMutablePointer<Float>, transposed: Bool) throws(ExecutionError) {
        let (m, n) = (stored.shape[0], stored.shape[1])
        let piece = 16_384
        let staging = UnsafeMutableRawPointer.allocate(byteCount: piece * stored.dtype.byteSize, alignment: 16)
        let values = UnsafeMutablePointer<Float>.allocate(capacity: piece)
        defer {
            staging.deallocate()
            values.deallocate()
        }
        var start = 0
        while start < m * n {
            let count = min(piece, m * n - start)
            do {
                try reader.readFloats(stored, elementOffset: start, count: count, staging: staging, into: values)
            } catch {
                throw .checkpoint(error)
            }
            for e in 0..<count {
                let (i, j) = ((start + e) / n, (start + e) % n)
                destination[transposed ? j * m + i : i * n + j] = values[e]
            }
            start += count
        }
    }
}

extension LoRADeltaChunkKernel {
    /// Both factors as f32 for the whole group, `rank · (rows + columns)` floats, and a row of partial sums per
    /// thread when the rank has more than one block.
    static func cost(rank: Int, shape: [Int], threads: Int) -> KernelCost {
        guard shape.count == 2 else { return KernelCost() }
        let scratch = rankBlocks(rank).count > 1 ? threads * shape[1] : 0
        return .constant(4 * (rank * (shape[0] + shape[1]) + scratch))
    }
}
