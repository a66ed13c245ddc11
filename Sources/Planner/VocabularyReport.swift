import Checkpoint
import Foundation
import IR
import Parser

/// How the inputs' vocabularies differ, for `mergegraph plan`: per document whose inputs' tokenizers or embedding
/// rows differ, per model, the output's tokens it lacks (their rows are filled), its tokens the output drops, tokens
/// whose id moves, and rows past its tokenizer's vocabulary (padding, as Qwen2's 152064 rows for 151665 tokens).
/// The output vocabulary is the one the tokenizer setting builds; without one it is the base model's (or the first
/// model's) tokenizer, which is what merging rows by index amounts to.
public enum VocabularyReport {
    /// What the report knows of one input.
    struct Input {
        var name: String
        var directory: String
        var vocabSize: Int?
        /// Rows of its input embedding (nil when it has none).
        var rows: Int?
        var vocabulary: [String: Int]?
    }

    /// The report's lines (without comment markers) for every document of `file` whose inputs' vocabularies differ;
    /// empty when none does. Models that cannot be read are left out (compiling names them).
    public static func lines(for file: ConfigFile, catalog: CheckpointCatalog) -> [String] {
        let stageNames = Set(file.documents.compactMap { $0.name?.value })
        var lines: [String] = []
        for document in file.documents {
            var refs: [ModelReference] = document.baseModel.map { [$0] } ?? []
            switch document.inputs {
            case .models(let models): refs += models.map(\.model)
            case .slices(let slices): refs += slices.flatMap { $0.sources.map(\.model) }
            }
            var inputs: [Input] = []
            for ref in refs where !stageNames.contains(ref.path) && !inputs.contains(where: { $0.name == ref.path }) {
                guard catalog.hasCheckpointDirectory(at: ref.path), let info = try? catalog.checkpoint(at: ref.path) else {
                    continue
                }
                let config = info.configJSON.flatMap { try? JSONParser.parse($0) }
                let embedding = info.tensorNames.first { ModelLayout.isEmbedding($0) && info.tensors[$0]?.type.shape.count == 2 }
                let input = TokenizerInput(name: ref.path, directory: info.resolvedPath,
                                           vocabSize: VocabularyAlignment.vocabSize(in: config))
                inputs.append(Input(name: ref.path, directory: info.resolvedPath, vocabSize: input.vocabSize,
                                    rows: embedding.flatMap { info.tensors[$0]?.type.shape.first },
                                    vocabulary: (try? VocabularyBuilder.read(input))?.vocabulary))
            }
            guard inputs.count > 1, differ(inputs) else { continue }
            let label = document.name.map { " of stage '\($0.value)'" } ?? ""
            lines += report(inputs, settings: document.tokenizer, title: "vocabulary report\(label)")
        }
        return lines
    }

    /// Whether the inputs' embedding rows or tokenizers differ.
    static func differ(_ inputs: [Input]) -> Bool {
        Set(inputs.map { $0.rows ?? -1 }).count > 1 || Set(inputs.map { $0.vocabulary ?? [:] }).count > 1
    }

    /// The report of `inputs` (`inputs[0]` is the base model, or the first model) under `settings`.
    static func report(_ inputs: [Input], settings: TokenizerSettings?, title: String) -> [String] {
        let tokenizers = inputs.map { TokenizerInput(name: $0.name, directory: $0.directory, vocabSize: $0.vocabSize) }
        var kind = VocabularyKind.base
        switch settings?.source.value {
        case .union?: kind = .union
        case .model(let ref)?:
            let known = inputs.first { $0.name == ref.path }
            kind = .model(TokenizerInput(name: ref.path, directory: known?.directory ?? ref.path, vocabSize: known?.vocabSize))
        default: break
        }
        let built: BuiltVocabulary
        do {
            built = try VocabularyBuilder.build(inputs: tokenizers, base: 0, source: kind,
                                                addTokens: settings?.tokens.map(\.token) ?? [])
        } catch {
            return [title + ": the output vocabulary cannot be built: \(error)"]
        }
        let output = built.tokens.count
        var rows = output
        if let pad = settings?.padToMultipleOf?.value, pad > 0, output % pad != 0 { rows = (output / pad + 1) * pad }
        var lines: [String]
        if let settings {
            lines = ["\(title): the output vocabulary (\(sourceText(settings))) has \(output) tokens, \(rows) rows"]
        } else {
            lines = ["\(title): the inputs' vocabularies differ, and no tokenizer_source aligns them: mergekit merges "
                     + "embedding rows by index, as if every model had the tokens of '\(inputs[0].name)' (\(output))"]
        }
        for (i, input) in inputs.enumerated() {
            lines.append("  '\(input.name)': " + describe(input, index: i, built: built))
        }
        return lines
    }

    private static func sourceText(_ settings: TokenizerSettings) -> String {
        let tokens = settings.tokens.isEmpty ? "" : ", \(settings.tokens.count) token setting(s)"
        return "tokenizer source \(settings.source.value)\(tokens)"
    }

    /// One model's line.
    private static func describe(_ input: Input, index: Int, built: BuiltVocabulary) -> String {
        var parts: [String] = []
        let rows = input.rows.map { "\($0) rows" } ?? "no input embedding"
        guard let own = input.vocabulary else {
            return "\(rows); no tokenizer.json: its tokens are assumed to be the base model's, as mergekit assumes"
        }
        parts.append("\(own.count) tokens, \(rows)")
        let permutation = built.permutations[index]
        let missing = built.tokens.indices.filter { permutation[$0] < 0 }.map { built.tokens[$0] }
        if !missing.isEmpty { parts.append("lacks \(count(missing, "output token")) (rows filled)") }
        let output = Set(built.tokens)
        let size = input.vocabSize ?? own.count
        let dropped = own.filter { !output.contains($0.key) && $0.value < size }.sorted { $0.value < $1.value }.map(\.key)
        if !dropped.isEmpty { parts.append("\(count(dropped, "token")) not in the output (rows dropped)") }
        let moved = built.tokens.indices.filter { permutation[$0] >= 0 && permutation[$0] != $0 }
        if !moved.isEmpty {
            let examples = moved.prefix(3).map { "\(JSONValue.quote(built.tokens[$0])) \(permutation[$0]) → \($0)" }
            parts.append("\(moved.count) token id(s) move (\(examples.joined(separator: ", "))\(moved.count > 3 ? ", …" : ""))")
        }
        let past = own.filter { $0.value >= size }.sorted { $0.value < $1.value }.map(\.key)
        if !past.isEmpty {
            parts.append("\(count(past, "token")) at ids past its vocab_size \(size) (left out)")
        }
        if let rowCount = input.rows, rowCount > own.count {
            parts.append("rows \(own.count)..<\(rowCount) are padding past its tokenizer's vocabulary")
        }
        if parts.count == 1 { parts.append("every output token at its own id") }
        return parts.joined(separator: "; ")
    }

    /// "2 output tokens ('<a>', '<b>')", with at most three examples.
    private static func count(_ tokens: [String], _ noun: String) -> String {
        let examples = tokens.prefix(3).map(JSONValue.quote).joined(separator: ", ")
        return "\(tokens.count) \(noun)\(tokens.count == 1 ? "" : "s") (\(examples)\(tokens.count > 3 ? ", …" : ""))"
    }
}
