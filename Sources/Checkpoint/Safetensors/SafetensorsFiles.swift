import Foundation

/// Finds the safetensors files of a checkpoint directory: the index's shards, `model.safetensors`, or every `*.safetensors`.
enum SafetensorsFiles {
    /// `name` inside `directory`.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The file names to open (relative to `directory`) and the shard index, if the directory has one.
    static func locate(in directory: String) throws(CheckpointError) -> (fileNames: [String], index: ShardIndex?) {
        let names = try CheckpointFormat.entries(of: directory)
        let indexPath = join(directory, ShardNaming.indexFileName)
        if names.contains(ShardNaming.indexFileName) {
            let index = try ShardIndex(path: indexPath)
            for shard in index.shardNames where !FileManager.default.fileExists(atPath: join(directory, shard)) {
                throw .missingShard(indexPath: indexPath, shard: shard, tensor: index.firstTensor(in: shard))
            }
            return (index.shardNames, index)
        }
        if names.contains(ShardNaming.singleFileName) {
            return ([ShardNaming.singleFileName], nil)
        }
        let safetensors = names.filter { $0.hasSuffix(".safetensors") }
        guard !safetensors.isEmpty else { throw CheckpointFormat.noReadableCheckpoint(directory: directory, entries: names) }
        return (safetensors, nil)
    }
}
