import Foundation
import IR

/// A remote model's `CheckpointInfo`, made without downloading its weights: `config.json` and the shard index are
/// fetched (they are small), each safetensors file's header is read where the file is (locally when cached, else by
/// two HTTP Range requests: its 8-byte length, then the header). PyTorch `.bin` weights have no header to read
/// apart, so they are fetched. What the merge still needs — the weights not cached, the tokenizer and generation
/// files — is `pending`, fetched before a run.
struct RemoteCheckpoint {
    let info: CheckpointInfo
    /// Files a run reads that are not local yet.
    let pending: [String]

    /// Describes `snapshot`, fetching its small files through `resolver`.
    /// - Throws: `CheckpointError.noCheckpoint`/`.unsupportedFormat` naming the reference when it has no weights
    ///   mergegraph reads; the header, index and fetch errors, naming the file.
    init(snapshot: any ResolvedSnapshot, resolver: any ModelResolver) throws(CheckpointError) {
        let directory = snapshot.directory
        let topLevel = snapshot.files.filter { !$0.contains("/") }.sorted()
        guard let weights = ModelFiles.weights(among: topLevel) else {
            throw CheckpointFormat.noReadableCheckpoint(directory: snapshot.reference, entries: topLevel)
        }
        let small = ([ModelFiles.config] + [weights.index].compactMap { $0 }).filter(topLevel.contains)
        try Self.fetch(small, of: snapshot, resolver: resolver)
        var shards = weights.files
        var index: ShardIndex?
        if let name = weights.index {
            let shardIndex = try ShardIndex(path: SafetensorsFiles.join(directory, name))
            for shard in shardIndex.shardNames where !topLevel.contains(shard) {
                throw .missingShard(indexPath: "\(snapshot.reference)/\(name)", shard: shard,
                                    tensor: shardIndex.firstTensor(in: shard))
            }
            shards = shardIndex.shardNames
            index = shardIndex
        }
        let config = FileManager.default.contents(atPath: SafetensorsFiles.join(directory, ModelFiles.config)).map { [UInt8]($0) }
        var tensors: [String: TensorInfo] = [:]
        var names: [String] = []
        switch weights.format {
        case .pytorchBin:
            try Self.fetch(shards, of: snapshot, resolver: resolver)
            let reader = try PyTorchModel(directory: directory)
            names = reader.tensorNames
            for name in names {
                guard let t = reader.tensor(name) else { continue }
                tensors[name] = TensorInfo(name: name, type: TensorType(dtype: t.dtype, shape: t.shape))
            }
        case .safetensors:
            var stored: [StoredTensor] = []
            var fileOf: [String: String] = [:]
            for (fileIndex, shard) in shards.enumerated() {
                let path = "\(snapshot.reference)/\(shard)"
                guard let size = snapshot.size(of: shard) else {
                    throw .remote(reference: snapshot.reference, detail: "\(path): its size is unknown")
                }
                let header = try SafetensorsModel.readHeader(path: path, size: size, fileIndex: fileIndex) {
                    offset, count, buffer throws(CheckpointError) in
                    try snapshot.read(shard, offset: offset, count: count, into: buffer)
                }
                for tensor in header {
                    if let first = fileOf[tensor.name] {
                        throw .duplicateTensor(tensor: tensor.name, firstPath: "\(snapshot.reference)/\(first)", secondPath: path)
                    }
                    fileOf[tensor.name] = shard
                    tensors[tensor.name] = TensorInfo(name: tensor.name, type: TensorType(dtype: tensor.dtype, shape: tensor.shape))
                }
                stored += header
            }
            try index?.verify(tensors: stored, shardNames: shards)
            names = stored.map(\.name).sorted()
        }
        let sideFiles = ModelFiles.tokenizerFiles.filter(topLevel.contains)
        pending = (shards + sideFiles).filter { !snapshot.isLocal($0) }
        info = CheckpointInfo(resolvedPath: directory, tensorNames: names, tensors: tensors, configJSON: config)
    }

    /// Fetches those of `files` that are not local.
    static func fetch(_ files: [String], of snapshot: any ResolvedSnapshot,
                      resolver: any ModelResolver) throws(CheckpointError) {
        let missing = files.filter { !snapshot.isLocal($0) }
        if !missing.isEmpty { try resolver.fetch([(snapshot, missing)]) }
    }
}
