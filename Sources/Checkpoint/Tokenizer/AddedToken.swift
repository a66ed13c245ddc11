/// A token added on top of a tokenizer model's vocabulary, with the matching flags of Hugging Face `tokenizers`'
/// `AddedToken` (`tokenizers/src/tokenizer/added_vocabulary.rs`). Two added tokens are equal when every field is.
public struct AddedToken: Hashable, Sendable {
    public var content: String
    public var singleWord: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var normalized: Bool
    public var special: Bool

    /// A token with `tokenizers`' defaults: a special token is not normalized, an ordinary one is
    /// (`AddedToken::from(content, special)`; transformers' `add_tokens("text")` adds `from(text, false)`).
    public init(_ content: String, special: Bool = false) {
        self.init(content: content, singleWord: false, lstrip: false, rstrip: false, normalized: !special, special: special)
    }

    public init(content: String, singleWord: Bool, lstrip: Bool, rstrip: Bool, normalized: Bool, special: Bool) {
        self.content = content
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
        self.special = special
    }

    /// An entry of `tokenizer.json`'s `added_tokens` (its `id` is read separately); missing flags take
    /// `tokenizers`' serde defaults (false, `normalized` true).
    /// - Throws: `TokenizerError.malformed` naming `path` when the entry is not an object with a string `content`.
    init(json: JSONValue, path: String) throws(TokenizerError) {
        guard case .object = json, let content = json["content"]?.stringValue else {
            throw .malformed(path: path, "an entry of added_tokens has no string 'content'")
        }
        func flag(_ key: String, _ fallback: Bool) -> Bool { json[key]?.boolValue ?? fallback }
        self.init(content: content, singleWord: flag("single_word", false), lstrip: flag("lstrip", false),
                  rstrip: flag("rstrip", false), normalized: flag("normalized", true), special: flag("special", false))
    }

    /// The `added_tokens` entry `tokenizers` writes for this token with id `id`.
    func json(id: Int) -> JSONValue {
        .object([("id", .number(String(id))), ("content", .string(content)), ("single_word", .bool(singleWord)),
                 ("lstrip", .bool(lstrip)), ("rstrip", .bool(rstrip)), ("normalized", .bool(normalized)),
                 ("special", .bool(special))])
    }
}
