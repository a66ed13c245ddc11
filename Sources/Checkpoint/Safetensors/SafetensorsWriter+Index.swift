extension SafetensorsWriter {
    /// Writes `directory/model.safetensors.index.json` (`metadata.total_size` and `weight_map`, keys sorted, 2-space indent):
    /// `weightMap` maps tensor names to shard file names, `totalSize` is the tensors' stored bytes.
    /// - Throws: `CheckpointError.writeFailed` naming the index file.
    public static func writeIndex(directory: String, weightMap: [String: String], totalSize: Int) throws(CheckpointError) {
        let entries = weightMap.sorted { $0.key < $1.key }.map { "    \(JSONValue.quote($0.key)): \(JSONValue.quote($0.value))" }
        let weightMapText = entries.isEmpty ? "{}" : "{\n\(entries.joined(separator: ",\n"))\n  }"
        let text = """
            {
              "metadata": {
                "total_size": \(totalSize)
              },
              "weight_map": \(weightMapText)
            }

            """
        let output = try OutputFile(creating: SafetensorsFiles.join(directory, ShardNaming.indexFileName))
        try output.write(Array(text.utf8), at: 0)
        try output.finish()
    }
}
