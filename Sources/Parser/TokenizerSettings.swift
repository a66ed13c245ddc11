/// Where the merged model's vocabulary comes from (mergekit 0.1.5 `tokenizer_source` / `TokenizerConfig.source`).
public enum TokenizerSource: Hashable, Sendable, CustomStringConvertible {
    /// Every token of every input; the base model's tokens keep their ids (mergekit `build_union_tokenizer`).
    case union
    /// The base model's tokenizer (the first model's without a base), without tokens past its `vocab_size`.
    case base
    /// That model's tokenizer.
    case model(ModelReference)

    public var description: String {
        switch self {
        case .union: return "union"
        case .base: return "base"
        case .model(let ref): return ref.path
        }
    }
}

/// Where one token's embedding row comes from when it is set in `tokenizer.tokens` (mergekit
/// `TokenEmbeddingConfig.source`).
public enum TokenEmbeddingSource: Hashable, Sendable {
    /// `{kind: model_token, model: M, token: T}` or `{…, token_id: N}`: row `T` (or `N`) of model `M`, by that
    /// model's own ids (mergekit `ModelTokenEmbedding`).
    case modelToken(model: ModelReference, token: TokenReference)
    /// `{kind: zero}`: a zero row (mergekit `ZeroEmbedding`).
    case zero
    /// `M`: the same token's row in model `M`.
    case model(ModelReference)
}

/// A token named by its text or by its id in one model's vocabulary.
public enum TokenReference: Hashable, Sendable, CustomStringConvertible {
    case text(String)
    case id(Int)

    public var description: String {
        switch self {
        case .text(let t): return "token '\(t)'"
        case .id(let i): return "token id \(i)"
        }
    }
}

/// One entry of `tokenizer.tokens`: a token of the output vocabulary and where its rows come from.
public struct TokenEmbeddingSetting: Hashable, Sendable {
    /// The token's text (the key); it is added to the output vocabulary when missing.
    public var token: String
    /// nil when the entry sets no `source` (then a model lacking the token has no row for it).
    public var source: TokenEmbeddingSource?
    /// Whether every model takes the `source` row, even a model that has the token.
    public var force: Bool
    /// Where the entry's key is.
    public var location: SourceLocation

    public init(token: String, source: TokenEmbeddingSource?, force: Bool, location: SourceLocation) {
        self.token = token
        self.source = source
        self.force = force
        self.location = location
    }
}

/// `tokenizer_source: X`, or the `tokenizer:` section (mergekit 0.1.5 `TokenizerConfig`): how the output
/// vocabulary is built and how the vocabulary-axis tensors (embeddings, output heads) are aligned to it.
public struct TokenizerSettings: Hashable, Sendable {
    /// `union` when the section leaves `source` out, as in mergekit.
    public var source: Located<TokenizerSource>
    /// `tokens:` in file order.
    public var tokens: [TokenEmbeddingSetting]
    /// Pads the vocabulary-axis tensors to a multiple of this many rows (nil or 0: no padding).
    public var padToMultipleOf: Located<Int>?
    /// Where `tokenizer_source` or `tokenizer` was written (the key).
    public var location: SourceLocation

    public init(source: Located<TokenizerSource>, tokens: [TokenEmbeddingSetting] = [],
                padToMultipleOf: Located<Int>? = nil, location: SourceLocation) {
        self.source = source
        self.tokens = tokens
        self.padToMultipleOf = padToMultipleOf
        self.location = location
    }
}
