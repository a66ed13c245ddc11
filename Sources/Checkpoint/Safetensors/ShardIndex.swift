import Foundation

/// The `weight_map` of a `model.safetensors.index.json`: which shard file holds each tensor.
struct ShardIndex {
    let path: String
    let weightMap: [String: String]

    init(path: String) throws(CheckpointError) {
        let root: Any
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw .malformedIndex(path: path, detail: "cannot read it as JSON (\(JSONText.describe(error)))")
        }
        guard let object = root as? [String: Any], let weightMap = object["weight_map"] as? [String: String] else {
            throw .malformedIndex(path: path, detail: "expected an object with a \"weight_map\" of tensor names to shard file names")
        }
        self.path = path
        self.weightMap = weightMap
    }

    /// The distinct shard file names, sorted.
    var shardNames: [String] { Set(weightMap.values).sorted() }

    /// The alphabetically first tensor the index places in `shard` (for error messages).
    func firstTensor(in shard: String) -> String {
        weightMap.filter { $0.value == shard }.keys.min() ?? ""
    }

    /// Checks the index and the shards agree: every tensor is where the index says, and the index lists nothing else.
    func verify(tensors: [StoredTensor], shardNames: [String]) throws(CheckpointError) {
        for tensor in tensors {
            let actualShard = shardNames[tensor.fileIndex]
            guard let mappedShard = weightMap[tensor.name] else {
                throw .indexMismatch(indexPath: path, tensor: tensor.name, detail: "it is in \(actualShard) but missing from weight_map")
            }
            guard mappedShard == actualShard else {
                throw .indexMismatch(indexPath: path, tensor: tensor.name, detail: "weight_map places it in \(mappedShard), but it is in \(actualShard)")
            }
        }
        let present = Set(tensors.map(\.name))
        for (name, shard) in weightMap.sorted(by: { $0.key < $1.key }) where !present.contains(name) {
            throw .indexMismatch(indexPath: path, tensor: name, detail: "weight_map places it in \(shard), which has no such tensor")
        }
    }
}
