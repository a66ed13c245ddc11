import Foundation

/// A model directory's chat template and mergekit 0.1.5's `chat_template` setting (`merge.py`, `_set_chat_template`).
public enum ChatTemplate {
    /// The chat template a tokenizer read from `directory` has, as transformers 5 loads it: `chat_template.jinja`,
    /// else `tokenizer_config.json`'s `chat_template` (a string, or the `default` of a list of named templates); nil
    /// when it has none.
    public static func template(inDirectory directory: String) -> String? {
        let jinja = (directory as NSString).appendingPathComponent("chat_template.jinja")
        if let data = FileManager.default.contents(atPath: jinja) { return String(decoding: data, as: UTF8.self) }
        let configPath = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        guard let data = FileManager.default.contents(atPath: configPath),
              let config = try? JSONParser.parse(Array(data)) else { return nil }
        switch config["chat_template"] {
        case .string(let text)?: return text
        case .array(let named)?:
            return named.first { $0["name"]?.stringValue == "default" }?["template"]?.stringValue
        default: return nil
        }
    }

    /// What `chat_template: setting` resolves to: for `auto`, the template most of `directories` share (compared and
    /// returned without surrounding whitespace; the first of the most common when several tie, and nil when none has
    /// one); for a name mergekit ships (`chatml`, `llama3`, …) its template; otherwise the setting itself, a literal
    /// Jinja template.
    /// - Throws: `TokenizerError.malformed` (path `chat_template`) for a setting that is neither, as mergekit's
    ///   "Invalid chat template" (shorter than 20 characters or without `{`).
    public static func resolve(_ setting: String, directories: [String]) throws(TokenizerError) -> String? {
        if setting == "auto" {
            var counts: [String: Int] = [:]
            var order: [String] = []
            for directory in directories {
                guard let template = template(inDirectory: directory)?.trimmingCharacters(in: .whitespacesAndNewlines),
                      !template.isEmpty else { continue }
                if counts[template] == nil { order.append(template) }
                counts[template, default: 0] += 1
            }
            let most = counts.values.max() ?? 0
            return order.first { counts[$0] == most }
        }
        if setting.count < 256, !setting.contains("\n"), !setting.contains("{"),
           let builtin = BuiltinChatTemplates.templates[setting] {
            return builtin
        }
        if setting.count < 20 || !setting.contains("{") {
            throw .malformed(path: "chat_template", "invalid chat template '\(setting)': neither 'auto', a template name ("
                             + BuiltinChatTemplates.templates.keys.sorted().joined(separator: ", ")
                             + ") nor a Jinja template")
        }
        return setting
    }
}
