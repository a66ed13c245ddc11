import Checkpoint
import IR
import Synchronization

/// `vocab_gather`: a vocabulary-axis tensor rearranged into the output vocabulary, chunk by chunk, reading each
/// row it needs from the stored tensors itself (through the group's staging buffer, with `pread`), as mergekit
/// 0.1.5's `PermutedVocabulary` (`mergekit/tokenizer/embed.py`) builds it in the merge dtype: a row picked once is
/// that row rounded to the node's dtype; a row picked from several models is their sum, rounded after every
/// addition, divided by their count and rounded (`embed = embed + row; embed /= count`); a row with no pick is
/// zero; padding rows are the mean of the vocabulary's rows (`torch.mean(new_embed[:len(vocab)], dim=0)`, summed in
/// f64 here), found in one statistics pass. Runs of consecutive rows of one source are read as one block.
final class VocabularyGatherChunkKernel: ChunkKernel, InputReadingKernel {
    private let gather: VocabularyGather
    private let readers: [any CheckpointReader]
    private let stored: [StoredTensor]
    private let staging: InputStaging
    private let context: KernelContext
    /// Elements per row.
    private let rowLength: Int
    private let stagingBytesPerElement: Int
    private let checksFinite: Bool
    /// Whether a read row held an infinite or NaN value (when `checksFinite`).
    private(set) var sawNonFinite = false
    /// One row, for the rows that are a mean and for the padding pass.
    private let scratch: AccountedBuffer<Float>
    /// The column sums of the vocabulary's rows and the row being added, during the padding pass.
    private var sums: AccountedBuffer<Double>?
    private var passRow: AccountedBuffer<Float>?
    /// The padding row, after the pass.
    private var mean: AccountedBuffer<Float>?

    /// A kernel reading `gather`'s sources through `models` (the plan's readers, by model index).
    /// - Throws: `ExecutionError.checkpoint` for a source missing from its checkpoint, `.planMismatch` for one whose
    ///   stored shape or dtype differs from the plan's.
    init(gather: VocabularyGather, models: [any CheckpointReader], staging: InputStaging, context: KernelContext,
         checksFinite: Bool = false) throws(ExecutionError) {
        var readers: [any CheckpointReader] = []
        var stored: [StoredTensor] = []
        for source in gather.sources {
            let reader = models[source.model]
            guard let tensor = reader.tensor(source.tensor) else {
                throw .checkpoint(.tensorNotInCheckpoint(directory: reader.directory, tensor: source.tensor))
            }
            guard tensor.shape == source.type.shape, tensor.dtype == source.type.dtype else {
                throw .planMismatch("tensor '\(source.tensor)' of \(reader.directory) is \(tensor.dtype.shortName)"
                                    + "\(tensor.shape) on disk, the plan gathers rows of \(source.type)")
            }
            readers.append(reader)
            stored.append(tensor)
        }
        self.gather = gather
        self.readers = readers
        self.stored = stored
        self.staging = staging
        self.context = context
        self.checksFinite = checksFinite
        rowLength = Self.rowLength(of: context.shape)
        stagingBytesPerElement = Self.stagingBytesPerElement(gather)
        scratch = context.memory.allocate(Float.self, count: rowLength)
    }

    func beginPass() -> Bool {
        guard gather.paddingRows > 0, mean == nil else { return false }
        sums = context.memory.allocate(Double.self, count: rowLength)
        passRow = context.memory.allocate(Float.self, count: rowLength)
        return true
    }

    func observe(_ operands: ChunkOperands) throws(ExecutionError) {
        guard let sums, let passRow else { return }
        _ = staging.buffer(bytes: operands.range.count * stagingBytesPerElement)
        let rows = operands.range.lowerBound / rowLength..<operands.range.upperBound / rowLength
        for row in rows where row < gather.rows.count {
            try makeRows(row..<row + 1, into: passRow.pointer)
            for j in 0..<rowLength { sums[j] += Double(passRow[j]) }
        }
    }

    func endPass() throws(ExecutionError) {
        guard let sums else { return }
        passRow = nil  // given back first: the pass's state never grows past its declared bytes
        let mean = context.memory.allocate(Float.self, count: rowLength)
        let count = Double(gather.rows.count)
        for j in 0..<rowLength { mean[j] = Float(sums[j] / count) }
        DTypeConversion.roundInPlace(mean.pointer, count: rowLength, to: context.dtype)
        self.mean = mean
        self.sums = nil
    }

    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        _ = staging.buffer(bytes: operands.range.count * stagingBytesPerElement)
        let first = operands.range.lowerBound / rowLength
        let rows = first..<operands.range.upperBound / rowLength
        let vocabulary = rows.clamped(to: rows.lowerBound..<max(rows.lowerBound, gather.rows.count))
        if !vocabulary.isEmpty { try makeRows(vocabulary, into: out) }
        for row in vocabulary.upperBound..<rows.upperBound {
            guard let mean else { throw .planMismatch("vocab_gather produced padding rows before its statistics pass") }
            (out + (row - first) * rowLength).update(from: mean.pointer, count: rowLength)
        }
    }

    /// Writes vocabulary rows `rows` to `out` (row `rows.lowerBound` first).
    private func makeRows(_ rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        var row = rows.lowerBound
        while row < rows.upperBound {
            let target = out + (row - rows.lowerBound) * rowLength
            let picks = gather.rows[row]
            switch picks.count {
            case 0:
                target.update(repeating: 0, count: rowLength)
                row += 1
            case 1:
                // A run of rows copied from consecutive rows of one source is one read.
                var end = row + 1
                while end < rows.upperBound, gather.rows[end].count == 1, gather.rows[end][0].source == picks[0].source,
                      gather.rows[end][0].row == picks[0].row + (end - row) {
                    end += 1
                }
                try read(picks[0], rows: end - row, into: target)
                row = end
            default:
                target.update(repeating: 0, count: rowLength)
                for pick in picks {
                    try read(pick, rows: 1, into: scratch.pointer)
                    for j in 0..<rowLength { target[j] += scratch[j] }
                    DTypeConversion.roundInPlace(target, count: rowLength, to: context.dtype)
                }
                let count = Float(picks.count)
                for j in 0..<rowLength { target[j] /= count }
                DTypeConversion.roundInPlace(target, count: rowLength, to: context.dtype)
                row += 1
            }
        }
    }

    /// Reads `count` rows of `pick`'s source from `pick.row` on into `target`, rounded to the node's dtype.
    private func read(_ pick: RowPick, rows count: Int, into target: UnsafeMutablePointer<Float>) throws(ExecutionError) {
        let tensor = stored[pick.source]
        let elements = pick.row * rowLength..<(pick.row + count) * rowLength
        let bytes = staging.buffer(bytes: elements.count * tensor.dtype.byteSize).assumingMemoryBound(to: UInt8.self)
        let destination = SendablePointer(target)
        let (dtype, roundTo, checksFinite) = (tensor.dtype, context.dtype, checksFinite)
        let nonFinite = Atomic<Bool>(false)
        try StoredBlocks.read(tensor, from: readers[pick.source], elements: elements, into: bytes,
                              parallel: context.parallel) { block, r in
            let values = destination.pointer + r.lowerBound
            DTypeConversion.decode(block, dtype: dtype, count: r.count, into: values)
            if checksFinite, FiniteCheck.exceeds(values, count: r.count, limitBits: Float.infinity.bitPattern) {
                nonFinite.store(true, ordering: .relaxed)
            }
            DTypeConversion.roundInPlace(values, count: r.count, to: roundTo)
        }
        if nonFinite.load(ordering: .relaxed) { sawNonFinite = true }
    }

    /// Elements per row of a tensor of `shape` (rows along dimension 0).
    static func rowLength(of shape: [Int]) -> Int {
        max(1, shape.dropFirst().reduce(1, *))
    }

    /// The staging bytes per chunk element: the widest source dtype.
    static func stagingBytesPerElement(_ gather: VocabularyGather) -> Int {
        gather.sources.map(\.type.dtype.byteSize).max() ?? 4
    }
}

extension VocabularyGatherChunkKernel {
    /// One f32 row of scratch throughout; with padding, an f64 row of column sums and an f32 row during the pass and
    /// the f32 mean row after it; reads go through the group's staging buffer at the widest source dtype's size.
    static func cost(_ gather: VocabularyGather, shape: [Int]) -> KernelCost {
        let row = rowLength(of: shape)
        let staging = stagingBytesPerElement(gather)
        guard gather.paddingRows > 0 else {
            return KernelCost(initialBytes: row * 4, sweepBytes: row * 4, stagingBytesPerElement: staging)
        }
        return KernelCost(initialBytes: row * 4, passBytes: [row * 4 + row * 8 + row * 4], sweepBytes: row * 4 + row * 4,
                          stagingBytesPerElement: staging)
    }
}
