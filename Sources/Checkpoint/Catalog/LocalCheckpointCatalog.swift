import Foundation
import IR
import Synchronization

/// Checkpoints on the local file system: each directory's format detected and its files opened once
/// (`CheckpointFormat.open(directory:)`), shared by the planner (headers, `config.json`) and the executor (readers).
/// With a `ModelResolver`, a reference that is no directory is resolved to a snapshot directory (a Hugging Face
/// repo in the Hub cache): described from its cached files and remote headers at compile time, its missing files
/// fetched by `fetchPending(for:)` before a run.
public final class LocalCheckpointCatalog: CheckpointCatalog, Sendable {
    private let opened = Mutex<[String: any CheckpointReader]>([:])
    private let adapters = Mutex<[String: LoRAAdapter]>([:])
    /// Resolves references that are no directory; nil: local directories only.
    public let resolver: (any ModelResolver)?
    /// Remote checkpoints described so far, by snapshot directory: their info and the files a run still needs.
    private let remote = Mutex<[String: (snapshot: any ResolvedSnapshot, info: CheckpointInfo, pending: [String])]>([:])

    /// An empty catalog; directories are opened on first use. `resolver` serves references that are no directory.
    public init(resolver: (any ModelResolver)? = nil) {
        self.resolver = resolver
    }

    /// Whether `path` is an existing directory (symlinks followed).
    public func hasCheckpointDirectory(at path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The tensors and `config.json` of the checkpoint in `path`, resolved to an absolute path without symlinks.
    /// - Throws: `CheckpointError` naming the directory and file (see `CheckpointFormat.open(directory:)`);
    ///   `.missingConfig` when the folder has weights but no `config.json` (mergekit needs it too),
    ///   `.cannotOpen` when it cannot be read.
    public func checkpoint(at path: String) throws -> CheckpointInfo {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        let reader = try reader(at: resolved)
        var tensors: [String: TensorInfo] = [:]
        for name in reader.tensorNames {
            guard let t = reader.tensor(name) else { continue }
            tensors[name] = TensorInfo(name: name, type: TensorType(dtype: t.dtype, shape: t.shape))
        }
        let configPath = (resolved as NSString).appendingPathComponent(ModelFiles.config)
        // One open and one read (`InputFile`), whose errors give the system's reason.
        let config: [UInt8]
        do {
            let file = try InputFile(path: configPath)
            config = try file.bytes(offset: 0, count: file.size)
        } catch .fileNotFound {
            throw CheckpointError.missingConfig(directory: resolved)
        }
        return CheckpointInfo(resolvedPath: resolved, tensorNames: reader.tensorNames, tensors: tensors, configJSON: config)
    }

    /// The checkpoint in directory `path`, or, when there is none and the resolver accepts `path`, the remote
    /// model it names at `revision`: described from its cached files and the headers of the others (nothing large
    /// is downloaded; see `fetchPending(for:)`).
    /// - Throws: `CheckpointError.modelIsFile` when `path` is a file; `.noSuchModel` when it is neither a directory
    ///   nor a model the resolver finds (saying what it found); the resolver's `.remote` errors; the checkpoint's
    ///   own errors.
    public func checkpoint(at path: String, revision: String?) throws -> CheckpointInfo {
        if hasCheckpointDirectory(at: path) { return try checkpoint(at: path) }
        // A file is no model whatever the Hub says of its path (which may look like a repo id).
        let missing = CheckpointError.missingModel(path: path, remote: nil)
        if case .modelIsFile = missing { throw missing }
        let snapshot = try resolve(path, revision: revision)
        if let known = remote.withLock({ $0[snapshot.directory] }) { return known.info }
        guard let resolver else { throw CheckpointError.missingModel(path: path, remote: nil) }
        let described = try RemoteCheckpoint(snapshot: snapshot, resolver: resolver)
        remote.withLock { $0[snapshot.directory] = (snapshot, described.info, described.pending) }
        return described.info
    }

    /// The PEFT LoRA adapter `path` names: a directory, or a remote repo (its `adapter_config.json` and weights are
    /// fetched at once; adapters are small).
    /// - Throws: `CheckpointError` naming the directory and file (see `LoRAAdapter.init(directory:resolvedPath:)`),
    ///   and the errors of `checkpoint(at:revision:)` for a remote one.
    public func adapter(at path: String, revision: String?) throws -> LoRAAdapterInfo {
        if hasCheckpointDirectory(at: path) {
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
            return try adapterReader(at: resolved).info
        }
        let snapshot = try resolve(path, revision: revision)
        let files = [LoRAAdapter.configFileName] + LoRAAdapter.weightFileNames.filter(snapshot.files.contains).prefix(1)
        if let resolver { try RemoteCheckpoint.fetch(files.filter(snapshot.files.contains), of: snapshot, resolver: resolver) }
        return try adapterReader(at: snapshot.directory).info
    }

    /// The snapshot the resolver gives for `path` at `revision`.
    /// - Throws: `CheckpointError.noSuchModel` (`.modelIsFile` for a file) without a resolver or when it does not
    ///   accept `path`; its errors.
    private func resolve(_ path: String, revision: String?) throws(CheckpointError) -> any ResolvedSnapshot {
        guard let resolver else { throw .missingModel(path: path, remote: nil) }
        guard resolver.accepts(path) else {
            throw .missingModel(path: path, remote: "'\(path)' is not a repo id (NAME or ORG/NAME of letters, digits, '-', '_' and '.')")
        }
        return try resolver.resolve(path, revision: revision)
    }

    /// The files the remote checkpoints among `directories` still need for a run (weights not cached, tokenizer and
    /// generation files), with their sizes when known.
    public func pendingFiles(for directories: [String]) -> [(reference: String, file: String, bytes: Int?)] {
        remote.withLock { all in
            directories.compactMap { all[$0] }.flatMap { entry in
                entry.pending.filter { !entry.snapshot.isLocal($0) }
                    .map { (entry.snapshot.reference, $0, entry.snapshot.size(of: $0)) }
            }
        }
    }

    /// Fetches what the remote checkpoints among `directories` still need for a run (`pendingFiles(for:)`), all
    /// at once, so that their directories can be opened like any other.
    /// - Throws: the resolver's `CheckpointError.remote` naming the repo and file.
    public func fetchPending(for directories: [String]) throws(CheckpointError) {
        let requests = remote.withLock { all in
            directories.compactMap { all[$0] }.map { entry in
                (snapshot: entry.snapshot, files: entry.pending.filter { !entry.snapshot.isLocal($0) })
            }.filter { !$0.files.isEmpty }
        }
        guard let resolver, !requests.isEmpty else { return }
        try resolver.fetch(requests)
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
