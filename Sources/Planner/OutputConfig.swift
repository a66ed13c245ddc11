import Checkpoint
import IR

/// Builds the merged model's `config.json` from the donor's: layer count and dtype updated, everything else kept.
/// With `untieHead` (the output head merges a real head with a tied input's embedding, so it differs from the
/// merged embedding) a donor's `tie_word_embeddings: true` becomes false: loaded tied, the model would drop the head
/// it was given. mergekit keeps the donor's value (docs/mergekit-differences.md).
enum OutputConfig {
    static func make(donor: JSONValue?, layerCount: Int, dtype: DType?, untieHead: Bool = false) -> JSONValue? {
        guard var config = donor else { return nil }
        if untieHead, config["tie_word_embeddings"]?.boolValue != false {
            config.set("tie_word_embeddings", .bool(false))
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
