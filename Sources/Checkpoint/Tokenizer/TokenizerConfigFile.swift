import Foundation

/// The `tokenizer_config.json` transformers 5 (`PreTrainedTokenizerBase.save_pretrained`, as mergekit 0.1.5 runs it)
/// writes for a tokenizer it read from a directory with `tokenizer_config.json` `donor`: the donor's settings without
/// what that version leaves out (`added_tokens_decoder`, `add_bos_token`/`add_eos_token`, the chat template, which goes
/// to `chat_template.jinja`, and private paths), `additional_special_tokens` as `extra_special_tokens`, special tokens as
/// their text, `backend`, `is_local` and `local_files_only` as from_pretrained records them, a `Fast` class name without
/// the suffix (`PreTrainedTokenizerFast` is `TokenizersBackend`), every key sorted, two-space indent, a final newline.
///
/// transformers 5 also rebuilds the pipelines of some model-specific classes (its `LlamaTokenizer` drops the
/// normalizer and the `legacy` key); mergegraph keeps the donor's (docs/mergekit-differences.md).
public enum TokenizerConfigFile {
    /// Keys transformers 5 does not write back.
    static let dropped: Set<String> = [
        "added_tokens_decoder", "add_bos_token", "add_eos_token", "chat_template", "name_or_path", "tokenizer_file",
        "special_tokens_map_file", "device_map", "slow_tokenizer_class", "files_loaded", "additional_special_tokens",
    ]

    /// The text written for a tokenizer read with `tokenizer_config.json` `donor` (nil when the directory has none).
    public static func saved(from donor: JSONValue?) -> String {
        var members: [(key: String, value: JSONValue)] = []
        if case .object(let given)? = donor { members = given }
        var result: [(key: String, value: JSONValue)] = []
        for (key, value) in members where !dropped.contains(key) {
            guard !result.contains(where: { $0.key == key }) else { continue }
            if key.hasSuffix("_token"), value["content"]?.stringValue != nil {
                result.append((key, .string(value["content"]!.stringValue!)))
            } else if key == "tokenizer_class", let name = value.stringValue {
                let bare = name.hasSuffix("Fast") ? String(name.dropLast(4)) : name
                result.append((key, .string(bare == "PreTrainedTokenizer" ? "TokenizersBackend" : bare)))
            } else {
                result.append((key, value))
            }
        }
        func set(_ key: String, _ value: JSONValue, onlyIfAbsent: Bool = false) {
            if let i = result.firstIndex(where: { $0.key == key }) {
                if !onlyIfAbsent { result[i].value = value }
            } else {
                result.append((key, value))
            }
        }
        if let extra = members.first(where: { $0.key == "additional_special_tokens" })?.value,
           case .array(let tokens) = extra, !tokens.isEmpty, !result.contains(where: { $0.key == "extra_special_tokens" }) {
            result.append(("extra_special_tokens", .array(tokens.map { $0["content"].map { $0 } ?? $0 })))
        }
        set("backend", .string("tokenizers"), onlyIfAbsent: true)
        set("is_local", .bool(true))
        set("local_files_only", .bool(false))
        set("tokenizer_class", .string("TokenizersBackend"), onlyIfAbsent: true)
        return sortedKeys(.object(result)).serialized() + "\n"
    }

    /// `json.dumps(sort_keys=True)`: every object's keys in code point order.
    static func sortedKeys(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            return .object(members.map { ($0.key, sortedKeys($0.value)) }
                .sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) })
        case .array(let items): return .array(items.map(sortedKeys))
        default: return value
        }
    }
}
