/// Decodes `tokenizer_source`, the `tokenizer:` section and `chat_template` of a document (mergekit 0.1.5
/// `MergeConfiguration.tokenizer_source`, `TokenizerConfig`, `TokenEmbeddingConfig`, `chat_template`).
enum TokenizerDecoder {
    /// The document's tokenizer settings: from `tokenizer_source` (null counts as absent) or `tokenizer:`.
    /// - Throws: `ConfigError.invalidValue` at the second key when both are given (mergekit: "Cannot specify both
    ///   tokenizer_source and tokenizer"), `.wrongType` / `.invalidValue` at a malformed value.
    static func settings(_ fields: Fields, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> TokenizerSettings? {
        let sourcePair = fields.pair("tokenizer_source").flatMap { $0.value.isNull ? nil : $0 }
        let sectionPair = fields.pair("tokenizer").flatMap { $0.value.isNull ? nil : $0 }
        if let sourcePair, let sectionPair {
            let second = sourcePair.key.location.line > sectionPair.key.location.line ? sourcePair : sectionPair
            throw .invalidValue(second.key.location, "cannot specify both 'tokenizer_source' and 'tokenizer' "
                                + "(use 'tokenizer: {source: …}' alone)")
        }
        if let sourcePair {
            return TokenizerSettings(source: try source(sourcePair.value), location: sourcePair.key.location)
        }
        guard let sectionPair else { return nil }
        let section = try Fields(sectionPair.value, expected: "a tokenizer section (source, tokens, pad_to_multiple_of)",
                                 allowed: ["source", "tokens", "pad_to_multiple_of"], diagnostics: diagnostics)
        let source = try section.optional("source").map { node throws(ConfigError) in try self.source(node) }
            ?? Located(.union, at: sectionPair.key.location)
        var tokens: [TokenEmbeddingSetting] = []
        if let node = section.optional("tokens") {
            guard case .mapping(let pairs) = node.kind else {
                throw .wrongType(node.location, expected: "a mapping of tokens to their settings", found: node.kindDescription)
            }
            for pair in pairs { tokens.append(try setting(pair, diagnostics)) }
        }
        var pad: Located<Int>?
        if let node = section.optional("pad_to_multiple_of") {
            pad = try wholeNumber(node, "pad_to_multiple_of")
        }
        return TokenizerSettings(source: source, tokens: tokens, padToMultipleOf: pad, location: sectionPair.key.location)
    }

    /// `chat_template`: a template name or a literal Jinja template (null counts as absent).
    static func chatTemplate(_ fields: Fields) throws(ConfigError) -> Located<String>? {
        try fields.optional("chat_template")?.string("a chat template name or a Jinja template")
    }

    /// `union`, `base` or a model reference.
    private static func source(_ node: YAMLNode) throws(ConfigError) -> Located<TokenizerSource> {
        let text = try node.string("'union', 'base' or a model path")
        switch text.value {
        case "union": return Located(.union, at: node.location)
        case "base": return Located(.base, at: node.location)
        default: return Located(.model(try node.modelReference()), at: node.location)
        }
    }

    /// One `TOKEN: {source?, force?}` entry of `tokens:`.
    private static func setting(_ pair: YAMLPair, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> TokenEmbeddingSetting {
        let token = try pair.key.key()
        var source: TokenEmbeddingSource?
        var force = false
        if !pair.value.isNull {
            let fields = try Fields(pair.value, expected: "a token setting (source, force)", allowed: ["source", "force"],
                                    diagnostics: diagnostics)
            if let node = fields.optional("source") { source = try embeddingSource(node, diagnostics) }
            if let node = fields.optional("force") {
                guard case .bool(let b)? = node.scalar.flatMap({ $0.isNull ? nil : $0.value }) else {
                    throw .wrongType(node.location, expected: "true or false", found: node.kindDescription)
                }
                force = b
            }
        }
        return TokenEmbeddingSetting(token: token, source: source, force: force, location: pair.key.location)
    }

    /// A model reference, `{kind: zero}` or `{kind: model_token, model: M, token: T | token_id: N}`. A mapping
    /// without `kind` is a model reference, as mergekit's schema reads it (its `token`/`token_id` are then ignored,
    /// with a warning).
    private static func embeddingSource(_ node: YAMLNode, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> TokenEmbeddingSource {
        guard case .mapping = node.kind else { return .model(try node.modelReference()) }
        let fields = try Fields(node, expected: "a token source (kind, model, token, token_id)",
                                allowed: ["kind", "model", "token", "token_id"], diagnostics: diagnostics)
        guard let kindNode = fields.optional("kind") else {
            let model = try fields.required("model").modelReference()
            for key in ["token", "token_id"] {
                if let ignored = fields.pair(key) {
                    try diagnostics.ignoredKey(key, at: ignored.key.location, allowed: ["model"],
                                               place: "a token source without 'kind: model_token' (a model reference)")
                }
            }
            return .model(model)
        }
        let kind = try kindNode.string("'model_token' or 'zero'")
        switch kind.value {
        case "zero":
            return .zero
        case "model_token":
            let model = try fields.required("model").modelReference()
            let text = fields.optional("token")
            let id = fields.optional("token_id")
            switch (text, id) {
            case (let text?, nil): return .modelToken(model: model, token: .text(try text.string("a token").value))
            case (nil, let id?): return .modelToken(model: model, token: .id(try wholeNumber(id, "token_id").value))
            case (nil, nil): throw .invalidValue(node.location, "token_id or token must be specified")
            case (_?, _?): throw .invalidValue(node.location, "only one of token_id or token may be specified")
            }
        default:
            throw .invalidValue(kind.location, "unknown token source kind '\(kind.value)' (expected 'model_token' or 'zero')")
        }
    }

    /// A whole number ≥ 0.
    private static func wholeNumber(_ node: YAMLNode, _ name: String) throws(ConfigError) -> Located<Int> {
        let x = try node.number("a whole number")
        guard x.value >= 0, x.value == x.value.rounded(), x.value <= Double(Int32.max) else {
            throw .invalidValue(node.location, "\(name) must be a whole number ≥ 0")
        }
        return Located(Int(x.value), at: node.location)
    }
}
