import Foundation
import IR
import Synchronization

/// Checkpoints on the local file system: each directory's format detected and its files opened once
/// (`CheckpointFormat.open(directory:)`), shared by the planner (headers, `config.json`) and the executor (readers).
public final class LocalCheckpointCatalog: CheckpointCatalog, Sendable {
    private let opened = Mutex<[String: any CheckpointReader]>([:])
    private let adapters = Mutex<[String: LoRAAdapter]>([:])

    /// An empty catalog; directories are opened on first use.
    public init() {}

    /// Whether `path` is an existing directory (symlinks followed).
    public func hasCheckpointDirectory(at path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The tensors and `config.json` of the checkpoint in `path`, resolved to an absolute path without symlinks.
    /// - Throws: `CheckpointError` naming the directory and file (see `CheckpointFormat.open(directory:)`).
    public func checkpoint(at path: String) throws -> CheckpointInfo {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        let reader = try reader(at: resolved)
        var tensors: [String: TensorInfo] = [:]
        for name in reader.tensorNames {
            guard let t = reader.tensor(name) else { continue }
            tensors[name] = TensorInfo(name: name, type: TensorType(dtype: t.dtype, shape: t.shape))
        }
        let configPath = (resolved as NSString).appendingPathComponent("config.json")
        let config = FileManager.default.contents(atPath: configPath).map { [UInt8]($0) }
        return CheckpointInfo(resolvedPath: resolved, tensorNames: reader.tensorNames, tensors: tensors, configJSON: config)
    }

    /// The PEFT LoRA adapter in directory `path`: which modules it changes and the tensors it replaces.
    /// - Throws: `CheckpointError` naming the directory and file (see `LoRAAdapter.init(directory:resolvedPath:)`).
    public func adapter(at path: String) throws -> LoRAAdapterInfo {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        return try adapterReader(at: resolved).info
    }

    /// The adapter at `resolvedPath` (a `LoRAAdapterInfo.resolvedPath`), opened on first use; it reads the adapter's
    /// tensors like any checkpoint reader.
    /// - Throws: `CheckpointError` naming the directory and file (see `LoRAAdapter.init(directory:resolvedPath:)`).
    public func adapterReader(at resolvedPath: String) throws(CheckpointError) -> LoRAAdapter {
        if let adapter = adapters.withLock({ $0[resolvedPath] }) { return adapter }
        let adapter = try LoRAAdapter(directory: resolvedPath, resolvedPath: resolvedPath)
        return adapters.withLock { all in
            if let first = all[resolvedPath] { return first }
            all[resolvedPath] = adapter
            return adapter
        }
    }

    /// The reader of the checkpoint at `resolvedPath` (a `CheckpointInfo.resolvedPath`), opened on first use.
    /// - Throws: `CheckpointError` naming the directory and file (see `CheckpointFormat.open(directory:)`).
    public func reader(at resolvedPath: String) throws(CheckpointError) -> any CheckpointReader {
        if let reader = opened.withLock({ $0[resolvedPath] }) { return reader }
        let reader = try CheckpointFormat.open(directory: resolvedPath)
        return opened.withLock { readers in
            if let first = readers[resolvedPath] { return first }
            readers[resolvedPath] = reader
            return reader
        }
    }
}
