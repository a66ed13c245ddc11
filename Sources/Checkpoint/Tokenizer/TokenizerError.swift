/// A tokenizer that cannot be read, merged or written; every message names the model directory or file.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A `tokenizer.json` (or `tokenizer_config.json`) that is not the JSON Hugging Face's `tokenizers` writes.
    case malformed(path: String, String)
    /// A tokenizer model kind whose vocabulary mergegraph does not rebuild (`Unigram`, `WordPiece`, …).
    case unsupportedModel(path: String, kind: String)
    /// A model directory with no `tokenizer.json` where one is needed (`files`: the tokenizer files it has).
    case missingTokenizerJSON(directory: String, files: [String])
    /// A vocabulary whose ids do not run from 0 without a gap (`count` tokens, largest id `largest`).
    case idsNotContiguous(what: String, count: Int, largest: Int)

    public var description: String {
        switch self {
        case .malformed(let path, let message): return "\(path): \(message)"
        case .unsupportedModel(let path, let kind):
            return "\(path): the tokenizer's model is \(kind); mergegraph builds vocabularies of BPE and WordLevel "
                + "tokenizers only (mergekit 0.1.5 builds BPE ones only when it has to strip tokens)"
        case .missingTokenizerJSON(let directory, let files):
            let has = files.isEmpty ? "no tokenizer files" : "only " + files.joined(separator: ", ")
            return "\(directory): no tokenizer.json (it has \(has)); mergegraph reads tokenizers in the tokenizers "
                + "library's JSON format (save the tokenizer with a fast tokenizer to write one)"
        case .idsNotContiguous(let what, let count, let largest):
            return "\(what): the vocabulary's \(count) token ids do not run from 0 without a gap (largest id \(largest)), "
                + "so it cannot index the rows of an embedding"
        }
    }
}
