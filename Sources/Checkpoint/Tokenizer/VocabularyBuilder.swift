import Foundation

/// One model whose tokenizer takes part in building the output vocabulary.
public struct TokenizerInput: Sendable {
    /// The model as the config names it (for messages).
    public var name: String
    /// Its directory.
    public var directory: String
    /// `vocab_size` from its `config.json` (the rows of its embedding), nil when it has none.
    public var vocabSize: Int?

    public init(name: String, directory: String, vocabSize: Int?) {
        self.name = name
        self.directory = directory
        self.vocabSize = vocabSize
    }
}

/// Which tokenizer the output vocabulary is built from (mergekit's `tokenizer_source`).
public enum VocabularyKind: Sendable {
    /// Every input's tokens (`build_union_tokenizer`).
    case union
    /// The base input's tokenizer, stripped to its `vocab_size`.
    case base
    /// The tokenizer in this directory, as it is.
    case model(TokenizerInput)
}

/// The output vocabulary and how every input's token ids map into it (mergekit `TokenizerInfo`).
public struct BuiltVocabulary: Sendable {
    /// The output tokenizer.
    public var tokenizer: TokenizerVocabulary
    /// The directory whose `tokenizer_config.json` describes the output tokenizer (the base's for `union` and
    /// `base`, the source model's otherwise).
    public var configDirectory: String
    /// The output tokens by id (ids run from 0 without a gap).
    public var tokens: [String]
    /// Per input (in the order given), per output id: the input's row for that token, or -1 when the input lacks it
    /// (or has it only at a row past its `vocab_size`).
    public var permutations: [[Int]]
    /// Per input, its own vocabulary (token → id; the base's stripped); an input without a tokenizer has the base's.
    public var originalVocabularies: [[String: Int]]
    /// What mergekit would log as warnings.
    public var warnings: [String]
}

/// mergekit 0.1.5's `build_tokenizer` (`mergekit/tokenizer/build.py`) over `tokenizer.json` files, without the
/// Python tokenizers library: the output vocabulary for `tokenizer_source` `union`, `base` or a model, the tokens of
/// `tokenizer.tokens` added to it, and each input's permutation into it.
///
/// Where mergekit's result depends on hash order it is made deterministic (docs/mergekit-differences.md): the
/// inputs' tokens are visited in id order (mergekit iterates `get_vocab()`, a dict built from a Rust `HashMap`), and
/// the inputs in the order given (mergekit's `referenced_models()` is a Python set).
public enum VocabularyBuilder {
    /// Builds the vocabulary of `source` from `inputs`, `inputs[base]` being the base model (or the first model).
    /// - Throws: `TokenizerError` when the base's or the source's tokenizer cannot be read, or the output ids have a
    ///   gap.
    public static func build(inputs: [TokenizerInput], base: Int, source: VocabularyKind,
                             addTokens: [String]) throws(TokenizerError) -> BuiltVocabulary {
        var warnings: [String] = []
        let baseInput = inputs[base]
        let unstripped = try read(baseInput)
        let baseTokenizer = unstripped.stripped(vocabSize: baseInput.vocabSize ?? unstripped.vocabulary.count)
        var tokenizers: [TokenizerVocabulary?] = []
        for (i, input) in inputs.enumerated() {
            if i == base { tokenizers.append(baseTokenizer); continue }
            do {
                tokenizers.append(try read(input))
            } catch {
                warnings.append("unable to load the tokenizer of '\(input.name)' (\(error)); assuming it is the same as "
                                + "the base model's, as mergekit does")
                tokenizers.append(nil)
            }
        }
        var output: TokenizerVocabulary
        var configDirectory = baseInput.directory
        switch source {
        case .model(let model):
            output = try read(model)
            configDirectory = model.directory
        case .base:
            output = baseTokenizer
        case .union:
            output = union(base: base, inputs: inputs, tokenizers: tokenizers, warnings: &warnings)
        }
        var existing = Set(output.vocabulary.keys)
        for token in addTokens where !existing.contains(token) {
            output.addTokens([AddedToken(token)])
            existing.insert(token)
        }
        let vocabulary = output.vocabulary
        var tokens = [String?](repeating: nil, count: vocabulary.count)
        for (token, id) in vocabulary {
            guard id < tokens.count else {
                throw .idsNotContiguous(what: "the output vocabulary", count: vocabulary.count,
                                        largest: vocabulary.values.max() ?? 0)
            }
            tokens[id] = token
        }
        var permutations: [[Int]] = []
        var originals: [[String: Int]] = []
        for (i, input) in inputs.enumerated() {
            let own = (tokenizers[i] ?? baseTokenizer).vocabulary
            let size = input.vocabSize ?? own.count
            var p = [Int](repeating: -1, count: tokens.count)
            for (id, token) in tokens.enumerated() {
                guard let token, let row = own[token] else { continue }
                if row < size { p[id] = row }
            }
            permutations.append(p)
            originals.append(own)
        }
        return BuiltVocabulary(tokenizer: output, configDirectory: configDirectory, tokens: tokens.map { $0! },
                               permutations: permutations, originalVocabularies: originals, warnings: warnings)
    }

    /// `build_union_tokenizer`: the base's tokenizer plus every other input's tokens below its `vocab_size` that the
    /// base lacks (as ordinary added tokens, input by input, in id order), then every input's added tokens (the
    /// first input's settings win when two differ).
    private static func union(base: Int, inputs: [TokenizerInput], tokenizers: [TokenizerVocabulary?],
                              warnings: inout [String]) -> TokenizerVocabulary {
        let order = [base] + inputs.indices.filter { $0 != base && tokenizers[$0] != nil }
        var newTokens: [String] = []
        var seen = Set<String>()
        var added: [AddedToken] = []
        var addedIndex: [String: Int] = [:]
        var warned = Set<String>()
        for i in order {
            let tokenizer = tokenizers[i]!
            let size = inputs[i].vocabSize ?? tokenizer.modelVocabulary.count
            for (token, id) in tokenizer.vocabulary.sorted(by: { $0.value < $1.value }) {
                guard id < size else {
                    warnings.append("token \(JSONValue.quote(token)) is in the tokenizer of '\(inputs[i].name)' but its id "
                                    + "\(id) is not below vocab_size \(size)")
                    continue
                }
                if seen.insert(token).inserted { newTokens.append(token) }
            }
            for (id, info) in tokenizer.addedTokens.sorted(by: { $0.key < $1.key }) where id < size {
                if let k = addedIndex[info.content] {
                    if added[k] != info, warned.insert(info.content).inserted {
                        warnings.append("token \(JSONValue.quote(info.content)) is added with different settings by "
                                        + "several models; the first model's are used")
                    }
                    continue
                }
                addedIndex[info.content] = added.count
                added.append(info)
            }
        }
        var result = tokenizers[base]!
        let baseVocabulary = result.vocabulary
        for token in newTokens where addedIndex[token] == nil && baseVocabulary[token] == nil {
            result.addTokens([AddedToken(token)])
        }
        for info in added { result.addTokens([info]) }
        return result
    }

    /// The tokenizer in `input`'s directory.
    /// - Throws: `TokenizerError.missingTokenizerJSON` without `tokenizer.json`, `.malformed` / `.unsupportedModel`.
    public static func read(_ input: TokenizerInput) throws(TokenizerError) -> TokenizerVocabulary {
        let path = (input.directory as NSString).appendingPathComponent("tokenizer.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            let names = ["tokenizer.model", "vocab.json", "merges.txt", "vocab.txt", "tokenizer_config.json"]
            let present = names.filter {
                FileManager.default.fileExists(atPath: (input.directory as NSString).appendingPathComponent($0))
            }
            throw .missingTokenizerJSON(directory: input.directory, files: present)
        }
        return try TokenizerVocabulary(json: Array(data), path: path)
    }
}
