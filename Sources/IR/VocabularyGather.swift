/// One stored tensor a `vocab_gather` reads rows of: a vocabulary-axis tensor (embedding, output head) of an input.
public struct GatherSource: Hashable, Sendable {
    /// Index into `Graph.models`.
    public var model: Int
    /// The stored tensor's name.
    public var tensor: String
    /// Its stored type (rows first).
    public var type: TensorType

    public init(model: Int, tensor: String, type: TensorType) {
        self.model = model
        self.tensor = tensor
        self.type = type
    }
}

/// A row of a stored tensor.
public struct RowPick: Hashable, Sendable {
    /// Index into `VocabularyGather.sources`.
    public var source: Int
    /// The row (along dimension 0).
    public var row: Int

    public init(source: Int, row: Int) {
        self.source = source
        self.row = row
    }
}

/// The rows of one model's vocabulary-axis tensor rearranged into the output vocabulary, as mergekit 0.1.5's
/// `PermutedVocabulary` (`mergekit/tokenizer/embed.py`) builds them: output row `i` (token id `i`) is the mean of the
/// rows `rows[i]` names, each rounded to the node's dtype and summed in order in it (one row: that row; none: zero);
/// `paddingRows` more rows (`pad_to_multiple_of`) each hold the mean of the rows before them. `sources[0]` is the
/// model whose tensor this is; rows taken from the others fill the tokens it lacks.
public struct VocabularyGather: Hashable, Sendable {
    public var sources: [GatherSource]
    /// Per output token, the rows whose mean it takes.
    public var rows: [[RowPick]]
    /// Rows after the vocabulary's, each the mean of the vocabulary's rows.
    public var paddingRows: Int

    public init(sources: [GatherSource], rows: [[RowPick]], paddingRows: Int = 0) {
        self.sources = sources
        self.rows = rows
        self.paddingRows = paddingRows
    }

    /// Rows of the result.
    public var totalRows: Int { rows.count + paddingRows }

    /// Bytes the gather reads: every picked row in its stored dtype.
    public var readBytes: Int {
        let rowBytes = sources.map { $0.type.shape.isEmpty ? 0 : $0.type.byteCount / max(1, $0.type.shape[0]) }
        return rows.reduce(0) { total, picks in picks.reduce(total) { $0 + rowBytes[$1.source] } }
    }

    /// How the output rows are made, for `--dump-ir`: how many are copied from each source, averaged, zero.
    public struct Counts: Hashable, Sendable {
        /// Per source, rows copied from it.
        public var copied: [Int]
        public var averaged: Int
        public var zero: Int
    }

    /// How the rows are made.
    public var counts: Counts {
        var copied = [Int](repeating: 0, count: sources.count)
        var averaged = 0, zero = 0
        for picks in rows {
            switch picks.count {
            case 0: zero += 1
            case 1: copied[picks[0].source] += 1
            default: averaged += 1
            }
        }
        return Counts(copied: copied, averaged: averaged, zero: zero)
    }

    /// The attributes `--dump-ir` prints: rows copied per source, averaged, zero, padding.
    public var summary: String {
        let c = counts
        var parts = zip(sources, c.copied).filter { $0.1 > 0 }.map { "\($0.1) from @m\($0.0.model)" }
        if c.averaged > 0 { parts.append("\(c.averaged) averaged") }
        if c.zero > 0 { parts.append("\(c.zero) zero") }
        if paddingRows > 0 { parts.append("\(paddingRows) padding") }
        return "(\(totalRows) rows: " + parts.joined(separator: ", ") + ")"
    }

    /// What is wrong with the gather for a result of `shape`, or nil: a row count other than the vocabulary's and
    /// padding rows, padding without vocabulary rows, a source whose rows differ in length from the result's, or a
    /// row outside its source.
    public func problem(resultShape shape: [Int]) -> String? {
        guard shape.first == totalRows else { return "\(totalRows) rows do not make a result of shape \(shape)" }
        if paddingRows > 0 && rows.isEmpty { return "padding rows need vocabulary rows to average" }
        if sources.isEmpty { return "no source tensor" }
        for source in sources where source.type.shape.count != shape.count || source.type.shape.dropFirst() != shape.dropFirst() {
            return "source \"\(source.tensor)\" of @m\(source.model) is \(source.type), its rows do not match the result's"
        }
        for picks in rows {
            for pick in picks where !sources.indices.contains(pick.source) || pick.row < 0
                || pick.row >= sources[pick.source].type.shape[0] {
                return "row \(pick.row) of source \(pick.source) is outside it"
            }
        }
        return nil
    }
}
