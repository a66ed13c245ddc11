import IR

/// Which files of a model directory a merge reads, by name: the weights in the format `CheckpointFormat` picks
/// (safetensors over PyTorch `.bin`, with their index), `config.json`, and the tokenizer and generation files copied
/// beside the output. Used to fetch only those from a remote snapshot.
public enum ModelFiles {
    /// `config.json`.
    public static let config = "config.json"
    /// The tokenizer and generation files copied from the donor model when present (mergekit `_copy_tokenizer`).
    public static let tokenizerFiles = TokenizerFiles.copiedNames

    /// The weight files of a directory holding `names` (top-level file names), as the readers choose them: the
    /// safetensors index (to be read for its shards) or `model.safetensors` or every `*.safetensors`; else the
    /// `.bin` index or `pytorch_model.bin`. Nil when there are no weights mergegraph reads.
    public static func weights(among names: [String]) -> (format: CheckpointFormat, index: String?, files: [String])? {
        let set = Set(names)
        if set.contains(ShardNaming.indexFileName) { return (.safetensors, ShardNaming.indexFileName, []) }
        if set.contains(ShardNaming.singleFileName) { return (.safetensors, nil, [ShardNaming.singleFileName]) }
        let safetensors = names.filter { $0.hasSuffix(".safetensors") }.sorted()
        if !safetensors.isEmpty { return (.safetensors, nil, safetensors) }
        if set.contains(PyTorchModel.indexFileName) { return (.pytorchBin, PyTorchModel.indexFileName, []) }
        if set.contains(PyTorchModel.singleFileName) { return (.pytorchBin, nil, [PyTorchModel.singleFileName]) }
        return nil
    }
}
