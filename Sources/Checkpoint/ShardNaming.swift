/// The file names of a safetensors checkpoint as Hugging Face (and mergekit) write them: one `model.safetensors`,
/// or shards `model-0000i-of-0000n.safetensors` listed by `model.safetensors.index.json`.
public enum ShardNaming {
    /// The file of a checkpoint stored in one file.
    public static let singleFileName = "model.safetensors"
    /// The index of a sharded checkpoint (`weight_map`: tensor name → shard file name).
    public static let indexFileName = "model.safetensors.index.json"

    /// The name of shard `number` (1-based) of `count` shards: `model.safetensors` when `count` is 1, else
    /// `model-<number>-of-<count>.safetensors` with both numbers zero-padded to 5 digits (wider numbers are kept whole).
    public static func fileName(shard number: Int, of count: Int) -> String {
        count == 1 ? singleFileName : "model-\(pad5(number))-of-\(pad5(count)).safetensors"
    }

    private static func pad5(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }
}
