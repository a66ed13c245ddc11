import IR
import Parser

/// An error found while compiling a config: always names the config position, model or tensor at fault.
public enum PlanError: Error, CustomStringConvertible {
    /// A merge method or config feature mergegraph does not implement yet.
    case notImplemented(SourceLocation, String)
    /// A `merge_method` no method is registered under (the name, the registered names).
    case unknownMethod(SourceLocation, String, known: [String])
    /// A config value that is wrong for this merge (bad parameter, missing base model, …).
    case invalidConfig(SourceLocation, String)
    /// A model reference that cannot be read.
    case model(SourceLocation, path: String, String)
    /// A tensor missing from one input model.
    case missingTensor(tensor: String, model: String, SourceLocation)
    /// Inputs of one merge whose shapes differ.
    case shapeMismatch(SourceLocation, tensor: String, inputs: [(model: String, tensor: String, shape: [Int])])
    /// A vocabulary-axis tensor (embedding, output head) with different row counts: mergekit 0.1.5's error, with its
    /// two ways forward; at the first input whose row count differs from the first input's.
    case vocabularyMismatch(SourceLocation, tensor: String, inputs: [(model: String, rows: Int)])
    /// A stage graph problem in a multi-document config.
    case stage(SourceLocation?, String)
    /// The memory budget cannot hold even one row of a tensor's computation: `smallest` bytes, of which
    /// `writerBytes` are the write buffers of the output shards open meanwhile (the rest the tensor's own).
    case budgetTooSmall(budget: Int, smallest: Int, tensor: String, writerBytes: Int)

    public var description: String {
        switch self {
        case .notImplemented(let loc, let what): return "\(loc): not implemented: \(what)"
        case .unknownMethod(let loc, let name, let known):
            if let guess = KeySuggestion.closest(to: name, among: known) {
                return "\(loc): unknown merge method '\(name)' (did you mean '\(guess)'?)"
            }
            return "\(loc): unknown merge method '\(name)' (`mergegraph methods` lists them)"
        case .invalidConfig(let loc, let message): return "\(loc): \(message)"
        case .model(let loc, let path, let message): return "\(loc): model '\(path)': \(message)"
        case .missingTensor(let tensor, let model, let loc):
            return "\(loc): tensor '\(tensor)' is missing from model '\(model)'"
        case .shapeMismatch(let loc, let tensor, let inputs):
            let list = inputs.map {
                "'\($0.tensor)' of model '\($0.model)' is [\($0.shape.map(String.init).joined(separator: ", "))]"
            }
            return "\(loc): shape mismatch for output tensor '\(tensor)': " + list.joined(separator: ", ")
        case .vocabularyMismatch(let loc, let tensor, let inputs):
            let list = inputs.map { "'\($0.model)' has \($0.rows)" }.joined(separator: ", ")
            return "\(loc): the vocabularies differ: tensor '\(tensor)' has a row per token, and \(list) rows. "
                + "mergekit 0.1.5 stops here too. Either align the vocabularies with a tokenizer configuration "
                + "(`tokenizer_source: union`, `base` or a model; or `tokenizer: {source: base}` with per-token settings), "
                + "or pass --unsafe-truncate-embeddings to keep every model's first \(inputs.map(\.rows).min() ?? 0) "
                + "rows (only right when the token ids they share mean the same tokens)"
        case .stage(let loc, let message): return loc.map { "\($0): \(message)" } ?? message
        case .budgetTooSmall(let budget, let smallest, let tensor, let writerBytes):
            let writers = writerBytes > 0 ? " (with \(formatByteCount(writerBytes)) of write buffers for the output "
                + "shards open meanwhile)" : ""
            return "--max-memory \(formatByteCount(budget)) is too small: tensor \"\(tensor)\" needs "
                + "\(formatByteCount(smallest)) to run one row at a time\(writers), the most of any tensor; the "
                + "smallest workable budget is \(smallest) bytes (in whole MiB, as one would type it: --max-memory "
                + "\((smallest + (1 << 20) - 1) >> 20)MiB)"
        }
    }
}
