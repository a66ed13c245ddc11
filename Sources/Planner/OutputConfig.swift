import Checkpoint
import IR

/// Builds the merged model's `config.json` from the donor's: layer count and dtype updated, everything else kept.
enum OutputConfig {
    static func make(donor: JSONValue?, layerCount: Int, dtype: DType?) -> JSONValue? {
        guard var config = donor else { return nil }
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
