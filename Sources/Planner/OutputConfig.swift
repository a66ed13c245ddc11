import Checkpoint
import IR

/// Builds the merged model's `config.json` from the donor's: layer count and dtype updated, everything else kept.
/// `tieHead` sets `tie_word_embeddings` where the donor's value would be wrong for the tensors written: false when
/// the output head merges a real head with a tied input's embedding (loaded tied, the model would drop the head it
/// was given), true when no head is written because the models it would come from tie it (loaded untied, the head
/// would be missing). mergekit keeps the donor's value (docs/mergekit-differences.md). `vocabSize` is the rows of a
/// vocabulary built by a tokenizer setting (mergekit `_update_config_vocab`): it replaces `vocab_size` (in
/// `text_config` when the config keeps it there).
enum OutputConfig {
    static func make(donor: JSONValue?, layerCount: Int, dtype: DType?, tieHead: Bool? = nil,
                     vocabSize: Int? = nil) -> JSONValue? {
        guard var config = donor else { return nil }
        if let vocabSize {
            if config["vocab_size"] == nil, var text = config["text_config"], text["vocab_size"] != nil {
                text.set("vocab_size", .number(String(vocabSize)))
                config.set("text_config", text)
            } else {
                config.set("vocab_size", .number(String(vocabSize)))
            }
        }
        if let tieHead, config["tie_word_embeddings"]?.boolValue != tieHead {
            config.set("tie_word_embeddings", .bool(tieHead))
        }
        if let key = ModelLayout.layerCountKey(in: config) {
            config.set(key, .number(String(layerCount)))
        }
        if let dtype {
            let key = config["torch_dtype"] != nil && config["dtype"] == nil ? "torch_dtype" : "dtype"
            config.set(key, .string(dtype.torchName))
        }
        return config
    }
}
