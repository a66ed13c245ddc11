import Foundation

/// A way a checkpoint directory stores its tensors. Detected per directory; each format has its own `CheckpointReader`.
public enum CheckpointFormat: String, Sendable, CaseIterable {
    /// safetensors: `model.safetensors`, shards listed by `model.safetensors.index.json`, or any `*.safetensors` files.
    case safetensors
    /// PyTorch `torch.save` zip archives: `pytorch_model.bin`, or shards listed by `pytorch_model.bin.index.json`
    /// (`PyTorchModel`). Used only when the directory has no safetensors, as transformers and mergekit prefer those.
    case pytorchBin

    /// The files mergegraph looks for, for error messages.
    public static let expectedFiles =
        "expected \(ShardNaming.indexFileName), \(ShardNaming.singleFileName), *.safetensors, "
        + "\(PyTorchModel.indexFileName) or \(PyTorchModel.singleFileName)"

    /// File name endings of weights in formats mergegraph does not read (other PyTorch pickles, GGUF, TensorFlow, Flax).
    static let otherWeightSuffixes = [".bin", ".bin.index.json", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack"]

    /// The format of the checkpoint in `directory`: safetensors when it has any, else PyTorch `.bin` when it has
    /// `pytorch_model.bin` or its index (mergekit's `ShardedTensorIndex.from_disk` order).
    /// - Throws: `CheckpointError.directoryNotFound` if `directory` is not an existing directory, `.cannotOpen` if
    ///   it cannot be listed, `.unsupportedFormat` naming the weight files of formats not read (e.g.
    ///   `model.gguf`), `.noCheckpoint` listing what the directory has when it has no weights at all.
    public static func detect(directory: String) throws(CheckpointError) -> CheckpointFormat {
        let names = try entries(of: directory)
        if names.contains(where: { $0.hasSuffix(".safetensors") || $0 == ShardNaming.indexFileName }) {
            return .safetensors
        }
        if names.contains(PyTorchModel.singleFileName) || names.contains(PyTorchModel.indexFileName) {
            return .pytorchBin
        }
        throw noReadableCheckpoint(directory: directory, entries: names)
    }

    /// The error for `directory` (holding `entries`) when it has nothing mergegraph reads: `.unsupportedFormat`
    /// naming its weight files of other formats, else `.noCheckpoint` listing up to 8 of its entries.
    static func noReadableCheckpoint(directory: String, entries names: [String]) -> CheckpointError {
        let others = names.filter { name in otherWeightSuffixes.contains { name.hasSuffix($0) } }
        if !others.isEmpty { return .unsupportedFormat(directory: directory, files: others) }
        return .noCheckpoint(directory: directory, entries: Array(names.prefix(8)) + (names.count > 8 ? ["…"] : []))
    }

    /// Detects the format of `directory` and opens it: every file's header or index read and validated, the files
    /// kept open for `pread`.
    /// - Throws: the errors of `detect(directory:)`, and the format's errors for unreadable or inconsistent files
    ///   (each `CheckpointError` names the file and tensor).
    public static func open(directory: String) throws(CheckpointError) -> any CheckpointReader {
        switch try detect(directory: directory) {
        case .safetensors: return try SafetensorsModel(directory: directory)
        case .pytorchBin: return try PyTorchModel(directory: directory)
        }
    }

    /// The names in `directory` (besides `.` and `..`), sorted.
    /// - Throws: `CheckpointError.directoryNotFound`; `.cannotOpen` with the system's reason (`strerror`) when the
    ///   directory cannot be opened or read.
    static func entries(of directory: String) throws(CheckpointError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .directoryNotFound(path: directory)
        }
        // `opendir`/`readdir` rather than `FileManager.contentsOfDirectory`, whose errors say "NSCocoaErrorDomain
        // error 256" instead of the system's reason (out of file descriptors, say).
        guard let stream = opendir(directory) else {
            throw .cannotOpen(path: directory, reason: String(cString: strerror(errno)))
        }
        defer { closedir(stream) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw .cannotOpen(path: directory, reason: String(cString: strerror(errno))) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
