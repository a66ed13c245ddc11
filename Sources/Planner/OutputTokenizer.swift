import Checkpoint
import Foundation
import IR
import Parser

/// The tokenizer files of a stage's output, as mergekit 0.1.5's `run_merge` (`mergekit/merge.py`) writes them with
/// transformers 5: a vocabulary built by a tokenizer setting is saved (`tokenizer.json`, `tokenizer_config.json`,
/// `chat_template.jinja`) whatever `--copy-tokenizer` says; with `chat_template` alone the donor's tokenizer is saved
/// again with the template (`_copy_tokenizer`'s re-serializing branch); otherwise the donor's files are copied.
/// `generation_config.json` is copied from the donor in every case (mergekit copies it only in the last one; users
/// expect it, mergekit issue #275).
enum OutputTokenizer {
    /// The files of an output with vocabulary `vocabulary` (nil without a tokenizer setting) and `chat_template`
    /// `template`, its donor (base or first model) `donor`, and `models` the directories of every model it merges
    /// (for `chat_template: auto`). `warnings` gets what mergekit would log.
    /// - Throws: `PlanError.invalidConfig` at `chat_template` for a setting that is no template.
    static func files(vocabulary: VocabularyAlignment?, template: Located<String>?, donor: TensorProvider,
                      models: [String], warnings: inout [String]) throws(PlanError) -> TokenizerFiles? {
        var chosen: String?
        if let template {
            do {
                chosen = try ChatTemplate.resolve(template.value, directories: models)
            } catch {
                throw .invalidConfig(template.location, error.description)
            }
        }
        let generation = try donor.tokenizerFiles()?.files.filter { $0.name == "generation_config.json" } ?? []
        if let vocabulary {
            let directory = vocabulary.built.configDirectory
            var files = [
                SideFile(name: "tokenizer.json", contents: .text(vocabulary.built.tokenizer.serialized())),
                SideFile(name: "tokenizer_config.json",
                           contents: .text(TokenizerConfigFile.saved(from: readJSON(directory, "tokenizer_config.json")))),
            ]
            if let text = chosen ?? ChatTemplate.template(inDirectory: directory) {
                files.append(SideFile(name: "chat_template.jinja", contents: .text(text)))
            }
            return TokenizerFiles(files: files + generation, required: true)
        }
        let inherited = try donor.tokenizerFiles()
        guard let template else { return inherited.map { TokenizerFiles(files: $0.files, required: false) } }
        guard let inherited, let json = inherited.files.first(where: { $0.name == "tokenizer.json" }) else {
            warnings.append("\(template.location): warning: the base (or first) model has no tokenizer.json, so the "
                            + "chat template is not saved (mergekit fails to re-save such a tokenizer too)")
            return inherited
        }
        let config = inherited.files.first { $0.name == "tokenizer_config.json" }.flatMap(text).flatMap(parse)
        var files = [json, SideFile(name: "tokenizer_config.json", contents: .text(TokenizerConfigFile.saved(from: config)))]
        let own = inherited.files.first { $0.name == "chat_template.jinja" }.flatMap(text)
            ?? config?["chat_template"]?.stringValue
        if let text = chosen ?? own {
            files.append(SideFile(name: "chat_template.jinja", contents: .text(text)))
        }
        return TokenizerFiles(files: files + generation, required: false)
    }

    /// The text of a file to write.
    private static func text(_ file: SideFile) -> String? {
        switch file.contents {
        case .text(let text): return text
        case .copy(let path): return FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    private static func parse(_ text: String) -> JSONValue? { try? JSONParser.parse(Array(text.utf8)) }

    private static func readJSON(_ directory: String, _ name: String) -> JSONValue? {
        FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent(name))
            .flatMap { try? JSONParser.parse(Array($0)) }
    }
}
