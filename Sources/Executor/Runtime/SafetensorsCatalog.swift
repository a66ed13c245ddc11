import Foundation
import IR
import Planner

/// The planner's view of checkpoints on disk: safetensors headers and `config.json`, each directory opened once.
public final class SafetensorsCatalog: CheckpointCatalog, @unchecked Sendable {
    private var opened: [String: SafetensorsModel] = [:]

    public init() {}

    public func checkpoint(at path: String) throws -> CheckpointInfo {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        let model = try model(at: resolved)
        var tensors: [String: TensorInfo] = [:]
        for name in model.tensorNames {
            guard let t = model.tensor(name) else { continue }
            tensors[name] = TensorInfo(name: name, type: TensorType(dtype: t.dtype, shape: t.shape))
        }
        let configPath = (resolved as NSString).appendingPathComponent("config.json")
        let config = FileManager.default.contents(atPath: configPath).map { [UInt8]($0) }
        return CheckpointInfo(resolvedPath: resolved, tensorNames: model.tensorNames, tensors: tensors, configJSON: config)
    }

    /// The opened checkpoint at a resolved path (opening it on first use).
    public func model(at resolvedPath: String) throws(SafetensorsError) -> SafetensorsModel {
        if let m = opened[resolvedPath] { return m }
        let m = try SafetensorsModel(directory: resolvedPath)
        opened[resolvedPath] = m
        return m
    }
}
