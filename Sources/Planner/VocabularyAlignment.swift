import Foundation
import Checkpoint
import IR
import Parser

/// One input of a vocabulary-axis tensor (an embedding or output head) to align.
struct VocabularyInput {
    var ref: ModelReference
    var source: CheckpointSource
    /// The stored tensor read for it (the tied embedding for a missing head).
    var tensor: String
    var type: TensorType
}

/// A stage's output vocabulary (mergekit 0.1.5 `BuildTokenizer`, `mergekit/tokenizer/build.py`) and, per
/// vocabulary-axis tensor, each input's rows rearranged into it (`PermutedVocabulary`, `mergekit/tokenizer/embed.py`):
/// a model keeps its own row for every token it has (unless the token's setting forces another); a token it lacks
/// takes the row of the token's setting, else the one model that has it, else the base model's, else the mean of the
/// models that have it, else zero. Padding rows (`pad_to_multiple_of`) are the mean of the rest.
final class VocabularyAlignment {
    let settings: TokenizerSettings
    let built: BuiltVocabulary
    /// The models the vocabulary was built from, in the order given to the builder (base first).
    let references: [ModelReference]
    /// Rows of the aligned tensors: the vocabulary, padded up to a multiple of `pad_to_multiple_of`.
    let rowCount: Int
    /// mergekit's warnings, each once.
    private(set) var warnings: [String] = []
    private var warned = Set<String>()

    /// Builds the vocabulary of `settings` from `models` (their references and checkpoints), `models[base]` being the
    /// base model or the first model.
    /// - Throws: `PlanError.invalidConfig` at the setting for a tokenizer that cannot be read or built.
    init(settings: TokenizerSettings, models: [(ref: ModelReference, source: CheckpointSource)], base: Int) throws(PlanError) {
        self.settings = settings
        references = models.map(\.ref)
        let inputs = models.map { model in
            TokenizerInput(name: model.ref.path, directory: model.source.info.resolvedPath,
                           vocabSize: VocabularyAlignment.vocabSize(in: model.source.config))
        }
        let kind: VocabularyKind
        switch settings.source.value {
        case .union: kind = .union
        case .base: kind = .base
        case .model(let ref):
            let known = models.first { $0.ref == ref }
            let directory = known?.source.info.resolvedPath ?? ref.path
            // A name that is no input and no folder is most likely a misspelt keyword or model.
            var isFolder: ObjCBool = false
            if known == nil, !(FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder) && isFolder.boolValue) {
                let guess = KeySuggestion.closest(to: ref.path, among: ["union", "base"] + models.map(\.ref.path))
                throw .invalidConfig(settings.source.location, "tokenizer source '\(ref.path)' is neither 'union', 'base', "
                                     + "an input model nor a model folder"
                                     + (guess.map { " (did you mean '\($0)'?)" } ?? ""))
            }
            kind = .model(TokenizerInput(name: ref.path, directory: directory,
                                         vocabSize: known.flatMap { VocabularyAlignment.vocabSize(in: $0.source.config) }))
        }
        do {
            built = try VocabularyBuilder.build(inputs: inputs, base: base, source: kind, addTokens: settings.tokens.map(\.token))
        } catch {
            throw .invalidConfig(settings.source.location, "cannot build the output vocabulary: \(error)")
        }
        let count = built.tokens.count
        if let pad = settings.padToMultipleOf?.value, pad > 0, count % pad != 0 {
            rowCount = (count / pad + 1) * pad
        } else {
            rowCount = count
        }
        for warning in built.warnings { warn(warning) }
    }

    /// `vocab_size` of a `config.json` (or of its `text_config`, as multimodal configs nest it).
    static func vocabSize(in config: JSONValue?) -> Int? {
        config?["vocab_size"]?.intValue ?? config?["text_config"]?["vocab_size"]?.intValue
    }

    private func warn(_ message: String) {
        let line = "\(settings.location): warning: \(message)"
        if warned.insert(line).inserted { warnings.append(line) }
    }

    /// The gathers of tensor `name` whose inputs are `inputs` (in the slice's order), `base` the index of the base
    /// model among them: `result[i]` is input i's tensor in the output vocabulary, reading input i's rows first.
    /// - Throws: `PlanError.invalidConfig` at a token's setting that names a model this tensor does not come from, a
    ///   token or row that model lacks, or no source for a token a model lacks (mergekit fails there too).
    func gathers(of name: String, inputs: [VocabularyInput], base: Int?) throws(PlanError) -> [VocabularyGather] {
        let permutations: [[Int]] = inputs.map { input in
            built.permutations[references.firstIndex(of: input.ref)!]
        }
        let configured = Dictionary(settings.tokens.map { ($0.token, $0) }, uniquingKeysWith: { first, _ in first })
        // What a token takes where a model lacks it (or where its setting forces it): (input, row) picks to average.
        var defaults: [Int: [(input: Int, row: Int)]] = [:]
        for (id, token) in built.tokens.enumerated() {
            let present = permutations.indices.filter { permutations[$0][id] >= 0 }
            let setting = configured[token]
            guard setting?.force == true || present.count < inputs.count else { continue }
            if let setting {
                defaults[id] = try picks(for: setting, id: id, inputs: inputs, permutations: permutations, tensor: name)
            } else if present.count == 1 {
                defaults[id] = [(present[0], permutations[present[0]][id])]
            } else if present.isEmpty {
                warn("token \(JSONValue.quote(token)) is in no model's vocabulary; its rows of '\(name)' are zero")
                defaults[id] = []
            } else if let base, permutations[base][id] >= 0 {
                defaults[id] = [(base, permutations[base][id])]
            } else {
                defaults[id] = present.map { ($0, permutations[$0][id]) }
            }
        }
        var result: [VocabularyGather] = []
        for (i, input) in inputs.enumerated() {
            // Input i's own tensor first, then the others in order.
            let order = [i] + inputs.indices.filter { $0 != i }
            let slot = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
            var rows: [[RowPick]] = []
            rows.reserveCapacity(built.tokens.count)
            for (id, token) in built.tokens.enumerated() {
                let own = permutations[i][id]
                if own >= 0, configured[token]?.force != true {
                    rows.append([RowPick(source: 0, row: own)])
                } else if let picks = defaults[id] {
                    rows.append(picks.map { RowPick(source: slot[$0.input]!, row: $0.row) })
                } else {
                    rows.append([])
                }
            }
            let sources = order.map { k in
                GatherSource(model: inputs[k].source.modelIndex, tensor: inputs[k].tensor, type: inputs[k].type)
            }
            result.append(VocabularyGather(sources: sources, rows: rows, paddingRows: rowCount - built.tokens.count))
        }
        return result
    }

    /// The rows `setting` gives token `id` (`compute_default_embedding`).
    private func picks(for setting: TokenEmbeddingSetting, id: Int, inputs: [VocabularyInput], permutations: [[Int]],
                       tensor: String) throws(PlanError) -> [(input: Int, row: Int)] {
        let quoted = JSONValue.quote(setting.token)
        func input(_ model: ModelReference) throws(PlanError) -> Int {
            guard let k = inputs.firstIndex(where: { $0.ref == model }) else {
                throw .invalidConfig(setting.location, "token \(quoted) takes its row from model '\(model.path)', but "
                                     + "tensor '\(tensor)' is not merged from that model")
            }
            return k
        }
        switch setting.source {
        case nil:
            let lacking = inputs.indices.filter { permutations[$0][id] < 0 }.map { "'\(inputs[$0].ref.path)'" }
            throw .invalidConfig(setting.location, "token \(quoted) has no 'source', but "
                                 + (lacking.isEmpty ? "it is forced" : "\(lacking.joined(separator: ", ")) lack\(lacking.count == 1 ? "s" : "") it")
                                 + "; give it a source (a model, {kind: zero} or {kind: model_token, …})")
        case .zero?:
            return []
        case .model(let model)?:
            let k = try input(model)
            guard permutations[k][id] >= 0 else {
                throw .invalidConfig(setting.location, "token \(quoted) takes its row from model '\(model.path)', "
                                     + "which does not have that token")
            }
            return [(k, permutations[k][id])]
        case .modelToken(let model, let token)?:
            let k = try input(model)
            let row: Int
            switch token {
            case .id(let n): row = n
            case .text(let text):
                guard let n = built.originalVocabularies[references.firstIndex(of: inputs[k].ref)!][text] else {
                    throw .invalidConfig(setting.location, "token \(JSONValue.quote(text)) is not in the vocabulary of "
                                         + "model '\(model.path)'")
                }
                row = n
            }
            guard row >= 0, row < inputs[k].type.shape[0] else {
                throw .invalidConfig(setting.location, "\(token) is outside the \(inputs[k].type.shape[0]) rows of "
                                     + "'\(inputs[k].tensor)' in model '\(model.path)'")
            }
            return [(k, row)]
        }
    }
}
