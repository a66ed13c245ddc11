import Foundation

/// A tokenizer's vocabulary as Hugging Face `tokenizers` holds it after reading `tokenizer.json`: the model's
/// vocabulary (BPE or WordLevel) and the added vocabulary on top of it, with `tokenizers`' rules for giving added
/// tokens their ids (`AddedVocabulary::add_tokens` in `tokenizers/src/tokenizer/added_vocabulary.rs`: a token the
/// vocabulary already has keeps its id, a new one gets the next id past the model's vocabulary and the added
/// tokens). The other sections of the file (normalizer, pre-tokenizer, post-processor, decoder) are kept as read
/// and written back unchanged.
public struct TokenizerVocabulary: Sendable {
    /// The tokenizer model's kind.
    public enum ModelKind: String, Sendable {
        case bpe = "BPE"
        case wordLevel = "WordLevel"
    }

    /// The file it was read from, for messages.
    public let path: String
    public let kind: ModelKind
    /// `tokenizer.json` as read (its `model` and `added_tokens` are rebuilt from the fields below when written).
    private let document: JSONValue
    /// The model section's fields other than `vocab` and `merges`, as read.
    private let modelFields: [(key: String, value: JSONValue)]
    /// The model's vocabulary: token → id.
    public private(set) var modelVocabulary: [String: Int]
    /// BPE merges in priority order (empty for WordLevel).
    private var merges: [(String, String)]
    /// `added_tokens_map`: content → id of every added token.
    private var addedIDs: [String: Int] = [:]
    /// `added_tokens_map_r`: id → added token.
    public private(set) var addedTokens: [Int: AddedToken] = [:]
    /// The largest id in `addedIDs`.
    private var largestAddedID: Int?

    /// Reads `tokenizer.json` text `bytes` (from `path`, named in errors).
    /// - Throws: `TokenizerError.malformed` for text that is not a tokenizer, `.unsupportedModel` for a model other
    ///   than BPE or WordLevel.
    public init(json bytes: [UInt8], path: String) throws(TokenizerError) {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw .malformed(path: path, "not JSON: \(error)")
        }
        guard case .object(let model)? = document["model"] else {
            throw .malformed(path: path, "no 'model' object")
        }
        let type = document["model"]?["type"]?.stringValue
            ?? (document["model"]?["merges"] != nil ? "BPE" : nil)
        guard let type else { throw .malformed(path: path, "the model has no 'type'") }
        guard let kind = ModelKind(rawValue: type) else { throw .unsupportedModel(path: path, kind: type) }
        guard case .object(let vocab)? = document["model"]?["vocab"] else {
            throw .malformed(path: path, "the \(type) model has no 'vocab' object")
        }
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(vocab.count)
        for (token, id) in vocab {
            guard let id = id.intValue, id >= 0 else {
                throw .malformed(path: path, "token \(JSONValue.quote(token)) of the model's vocab has no integer id")
            }
            vocabulary[token] = id
        }
        var merges: [(String, String)] = []
        if kind == .bpe, case .array(let items)? = document["model"]?["merges"] {
            merges.reserveCapacity(items.count)
            for item in items {
                switch item {
                case .string(let text):
                    let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw .malformed(path: path, "merge \(JSONValue.quote(text)) is not two tokens") }
                    merges.append((String(parts[0]), String(parts[1])))
                case .array(let pair) where pair.count == 2 && pair.allSatisfy({ $0.stringValue != nil }):
                    merges.append((pair[0].stringValue!, pair[1].stringValue!))
                default:
                    throw .malformed(path: path, "a merge is neither \"a b\" nor [\"a\", \"b\"]")
                }
            }
        }
        self.path = path
        self.kind = kind
        self.document = document
        self.modelFields = model.filter { $0.key != "vocab" && $0.key != "merges" }
        self.modelVocabulary = vocabulary
        self.merges = merges
        var added: [AddedToken] = []
        if case .array(let entries)? = document["added_tokens"] {
            for entry in entries { added.append(try AddedToken(json: entry, path: path)) }
        }
        // `tokenizers` reads added tokens by adding them in order; the ids written beside them are not used.
        addTokens(added)
    }

    /// Adds `tokens` in order as `tokenizers`' `AddedVocabulary::add_tokens` does: an empty token or one equal (in
    /// every flag) to an added token is skipped; a token whose content the vocabulary has takes that id (and
    /// replaces the added token there); any other gets the next id (the model's vocabulary size, or one past the
    /// largest added id when that is at least the size).
    public mutating func addTokens(_ tokens: [AddedToken]) {
        let modelCount = modelVocabulary.count
        for token in tokens {
            if token.content.isEmpty { continue }
            if let id = addedIDs[token.content], addedTokens[id] == token { continue }
            let id: Int
            if let known = addedIDs[token.content] ?? modelVocabulary[token.content] {
                id = known
            } else if let largest = largestAddedID {
                id = largest >= modelCount || modelCount == 0 ? largest + 1 : modelCount
            } else {
                id = modelCount
            }
            addedIDs[token.content] = id
            addedTokens[id] = token
            largestAddedID = max(largestAddedID ?? id, id)
        }
    }

    /// `get_vocab(with_added_tokens=True)`: the model's vocabulary with the added tokens' ids over it.
    public var vocabulary: [String: Int] {
        modelVocabulary.merging(addedIDs) { _, added in added }
    }

    /// mergekit's `get_stripped_tokenizer`: without the tokens whose ids are `vocabSize` or more (removed from the
    /// model's vocabulary, the merges that use them and the added tokens), their ids then given again as `tokenizers`
    /// gives them when it reads the result. `self` when no id reaches `vocabSize`. (mergekit strips BPE tokenizers
    /// only; WordLevel ones are stripped the same way here.)
    public func stripped(vocabSize: Int) -> TokenizerVocabulary {
        let unused = Set(vocabulary.filter { $0.value >= vocabSize }.map(\.key))
        guard !unused.isEmpty else { return self }
        var result = self
        result.modelVocabulary = modelVocabulary.filter { !unused.contains($0.key) }
        result.merges = merges.filter { !unused.contains($0.0) && !unused.contains($0.1) }
        result.addedIDs = [:]
        result.addedTokens = [:]
        result.largestAddedID = nil
        result.addTokens(addedTokens.sorted { $0.key < $1.key }.filter { $0.key < vocabSize }.map(\.value))
        return result
    }

    /// The `tokenizer.json` text `tokenizers` writes for this vocabulary (`Tokenizer::to_string(pretty)`): its
    /// sections in `tokenizers`' order, the added tokens by id, the model's vocabulary by id and BPE merges as pairs;
    /// the normalizer, pre-tokenizer, post-processor and decoder as read. No trailing newline.
    public func serialized() -> String {
        let modelJSON: JSONValue
        let field = { (key: String, fallback: JSONValue) -> (key: String, value: JSONValue) in
            (key, self.modelFields.first { $0.key == key }?.value ?? fallback)
        }
        let vocab = JSONValue.object(modelVocabulary.sorted { $0.value < $1.value }.map { ($0.key, .number(String($0.value))) })
        switch kind {
        case .wordLevel:
            modelJSON = .object([("type", .string("WordLevel")), ("vocab", vocab), field("unk_token", .string("<unk>"))])
        case .bpe:
            modelJSON = .object([
                ("type", .string("BPE")), field("dropout", .null), field("unk_token", .null),
                field("continuing_subword_prefix", .null), field("end_of_word_suffix", .null),
                field("fuse_unk", .bool(false)), field("byte_fallback", .bool(false)), field("ignore_merges", .bool(false)),
                ("vocab", vocab), ("merges", .array(merges.map { .array([.string($0.0), .string($0.1)]) })),
            ])
        }
        let added = JSONValue.array(addedTokens.sorted { $0.key < $1.key }.map { $0.value.json(id: $0.key) })
        let section = { (key: String) -> (key: String, value: JSONValue) in (key, self.document[key] ?? .null) }
        return JSONValue.object([
            (key: "version", value: document["version"] ?? .string("1.0")), section("truncation"), section("padding"),
            ("added_tokens", added), section("normalizer"), section("pre_tokenizer"), section("post_processor"),
            section("decoder"), ("model", modelJSON),
        ]).serialized()
    }
}
