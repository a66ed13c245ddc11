import Foundation

/// Finds the safetensors files of a checkpoint directory: the index's shards, `model.safetensors`, or every `*.safetensors`.
enum CheckpointFiles {
    static let indexName = "model.safetensors.index.json"
    static let singleFileName = "model.safetensors"

    /// `name` inside `directory`.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The file names to open (relative to `directory`) and the shard index, if the directory has one.
    static func locate(in directory: String) throws(SafetensorsError) -> (fileNames: [String], index: ShardIndex?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .directoryNotFound(path: directory)
        }
        let indexPath = join(directory, indexName)
        if FileManager.default.fileExists(atPath: indexPath) {
            let index = try ShardIndex(path: indexPath)
            for shard in index.shardNames where !FileManager.default.fileExists(atPath: join(directory, shard)) {
                throw .missingShard(indexPath: indexPath, shard: shard, tensor: index.firstTensor(in: shard))
            }
            return (index.shardNames, index)
        }
        if FileManager.default.fileExists(atPath: join(directory, singleFileName)) {
            return ([singleFileName], nil)
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .cannotOpen(path: directory, reason: error.localizedDescription)
        }
        let safetensors = names.filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !safetensors.isEmpty else { throw .noSafetensorsFiles(directory: directory) }
        return (safetensors, nil)
    }
}
