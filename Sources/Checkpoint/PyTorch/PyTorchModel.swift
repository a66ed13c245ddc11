import Foundation
import IR

/// A PyTorch checkpoint directory opened for reading: `pytorch_model.bin`, or the shards that
/// `pytorch_model.bin.index.json` lists, each a `torch.save` zip archive. Every archive's `data.pkl` is read by
/// `RestrictedUnpickler` (nothing is executed); each tensor becomes a `StoredTensor` pointing at its bytes inside
/// the archive's stored `data/KEY` entry (storage offset applied), so tensors are read lazily with `pread` like
/// safetensors ones; each storage entry's CRC-32 is checked on the bytes those reads bring in, once all of them have
/// been read (`StorageChecks`). The `CheckpointReader` of `CheckpointFormat.pytorchBin`; follows transformers' file
/// names and mergekit's loader (`ShardedTensorIndex.from_disk`: a top-level `state_dict` entry is unwrapped).
public final class PyTorchModel: CheckpointReader, @unchecked Sendable {
    /// The single-file checkpoint's name.
    public static let singleFileName = "pytorch_model.bin"
    /// The shard index's name (`weight_map`: tensor name → shard file name).
    public static let indexFileName = "pytorch_model.bin.index.json"

    /// The directory, as given to `init(directory:)`.
    public let directory: String
    /// Paths of the opened archives; `StoredTensor.fileIndex` indexes this array.
    public let filePaths: [String]
    /// Every tensor name: files in order (shards sorted by name), each file's tensors in its state dict's order.
    public let tensorNames: [String]
    /// The archives, open for `pread`, and every tensor by name.
    private let opened: OpenedFiles
    /// The CRC-32 checks of each archive's storage entries, by file index.
    private let checks: [StorageChecks]

    /// Opens `files` in `directory` when given (a PEFT adapter's `adapter_model.bin`); otherwise the index's shards,
    /// else `pytorch_model.bin`.
    /// - Throws: `CheckpointError` naming the directory, file and tensor: no `.bin` checkpoint, a legacy (non-zip)
    ///   file, an unreadable archive, a pickle with an opcode or global torch.save does not write for a state dict,
    ///   a non-contiguous tensor, a storage entry that is compressed or too short, a tensor in two files, an index
    ///   that disagrees with the shards.
    public init(directory: String, files: [String]? = nil) throws(CheckpointError) {
        let names = try CheckpointFormat.entries(of: directory)
        var fileNames: [String]
        var index: ShardIndex?
        if let files {
            fileNames = files
        } else if names.contains(Self.indexFileName) {
            let indexPath = SafetensorsFiles.join(directory, Self.indexFileName)
            let shardIndex = try ShardIndex(path: indexPath)
            for shard in shardIndex.shardNames where !names.contains(shard) {
                throw .missingShard(indexPath: indexPath, shard: shard, tensor: shardIndex.firstTensor(in: shard))
            }
            fileNames = shardIndex.shardNames
            index = shardIndex
        } else if names.contains(Self.singleFileName) {
            fileNames = [Self.singleFileName]
        } else {
            throw CheckpointFormat.noReadableCheckpoint(directory: directory, entries: names)
        }
        var opened = OpenedFiles(directory: directory)
        var checks: [StorageChecks] = []
        for (fileIndex, name) in fileNames.enumerated() {
            let file = try InputFile(path: SafetensorsFiles.join(directory, name))
            let tensors = try Self.readTensors(file: file, fileIndex: fileIndex)
            try opened.add(file, tensors: tensors.map(\.tensor))
            checks.append(StorageChecks(file: file, tensors: tensors))
        }
        try index?.verify(tensors: opened.order.compactMap { opened.tensor($0) }, shardNames: fileNames)
        self.directory = directory
        self.filePaths = opened.files.map(\.path)
        self.tensorNames = opened.order
        self.opened = opened
        self.checks = checks
    }

    /// The tensors of one `torch.save` archive, in its state dict's order, with their byte ranges in the file.
    /// - Throws: the errors of `init(directory:)` for this file.
    public static func readTensors(path: String) throws(CheckpointError) -> [StoredTensor] {
        try readTensors(file: InputFile(path: path), fileIndex: 0).map(\.tensor)
    }

    /// Number of files opened.
    public var fileCount: Int { opened.files.count }

    /// The tensor called `name`, if the checkpoint has one.
    public func tensor(_ name: String) -> StoredTensor? { opened.tensor(name) }

    /// Copies `count` bytes at `offset` of archive `fileIndex` into `buffer` with `pread` (`OpenedFiles.readBytes`),
    /// and adds them to the CRC-32 checks of the storage entries they belong to (`StorageChecks`).
    /// - Throws: the errors of `OpenedFiles.readBytes`; `CheckpointError.invalidArchive` naming the file and entry
    ///   when the read completes a storage entry whose bytes do not match its CRC-32 (or reads one that did not).
    public func readBytes(fileIndex: Int, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError) {
        try opened.readBytes(fileIndex: fileIndex, offset: offset, count: count, into: buffer)
        try checks[fileIndex].note(offset: offset, count: count, bytes: buffer)
    }

    // MARK: one archive

    /// The tensors of the archive `file` (number `fileIndex` of its checkpoint), each with its storage entry.
    private static func readTensors(file: InputFile, fileIndex: Int) throws(CheckpointError)
        -> [(tensor: StoredTensor, entry: TorchZipArchive.Entry)] {
        let path = file.path
        guard file.size >= 4 else { throw .fileTooShort(path: path, fileSize: file.size) }
        let magic = try file.bytes(offset: 0, count: 4)
        let signature = UInt32(magic[0]) | UInt32(magic[1]) << 8 | UInt32(magic[2]) << 16 | UInt32(magic[3]) << 24
        guard signature == TorchZipArchive.localHeaderSignature else {
            // The legacy format starts with a pickled magic number: PROTO 2, LONG1 (0x80 0x02 0x8A).
            if magic[0] == 0x80 { throw .legacyPyTorchFormat(path: path) }
            throw .invalidArchive(path: path, detail: "it is not a zip archive (torch.save's format since PyTorch 1.6)")
        }
        let archive = try TorchZipArchive(file: file)
        let pickles = archive.entries.keys.filter { $0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2 }
        guard pickles.count == 1, let pickleName = pickles.first else {
            throw .invalidArchive(path: path, detail: "expected one ARCHIVE/data.pkl entry, found \(pickles.count)")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if archive.entries[prefix + "byteorder"] != nil {
            let order = String(decoding: try archive.contents(of: prefix + "byteorder"), as: UTF8.self)
            guard order == "little" else {
                throw .invalidArchive(path: path, detail: "its byteorder is '\(order)'; only little-endian archives are read")
            }
        }
        var tensors: [(tensor: StoredTensor, entry: TorchZipArchive.Entry)] = []
        for (name, record) in try stateDict(pickle: try archive.contents(of: pickleName), path: path) {
            tensors.append(try stored(name, record, entries: archive.entries, path: path, prefix: prefix, fileIndex: fileIndex))
        }
        return tensors
    }

    /// The tensors of the state dict a `data.pkl` holds (a top-level `state_dict` entry unwrapped), in its order.
    /// - Throws: `CheckpointError.unsupportedPickle` / `.malformedPickle` naming `path` (the archive) for a pickle
    ///   `RestrictedUnpickler` refuses, a value that is not a dict, a key that is not a string or a value that is
    ///   not a tensor.
    static func stateDict(pickle: [UInt8], path: String) throws(CheckpointError)
        -> [(name: String, record: TorchTensorRecord)] {
        var unpickler = RestrictedUnpickler(pickle)
        let root: PickleValue
        do throws(PickleRejection) {
            root = try unpickler.load()
        } catch {
            throw error.unsupported ? .unsupportedPickle(path: path, detail: error.detail)
                : .malformedPickle(path: path, detail: error.detail)
        }
        var stateDict = root
        if case .dict(let top) = root,
           let inner = top.entries.first(where: { if case .string("state_dict") = $0.key { return true }; return false }),
           case .dict = inner.value {
            stateDict = inner.value
        }
        guard case .dict(let dict) = stateDict else {
            throw .malformedPickle(path: path, detail: "data.pkl holds a \(root.kind), not a state dict")
        }
        var tensors: [(name: String, record: TorchTensorRecord)] = []
        for (key, value) in dict.entries {
            guard case .string(let name) = key else {
                throw .malformedPickle(path: path, detail: "a state dict key that is a \(key.kind), not a string")
            }
            guard case .tensor(let record) = value else {
                throw .malformedPickle(path: path, detail: "state dict entry \(name) is a \(value.kind), not a tensor")
            }
            tensors.append((name, record))
        }
        return tensors
    }

    /// Where the bytes of tensor `name` are: its storage entry's data offset plus the storage offset, with that entry;
    /// checks the view is contiguous (row-major strides, dimensions of size 1 free) and inside its stored, uncompressed
    /// entry (`PREFIX/data/KEY` of `entries`, the archive `path`'s).
    /// - Throws: `CheckpointError` naming `path` and the tensor: a negative or overflowing shape, a non-contiguous
    ///   view, a storage entry that is missing, compressed or too short.
    static func stored(_ name: String, _ record: TorchTensorRecord, entries: [String: TorchZipArchive.Entry],
                       path: String, prefix: String, fileIndex: Int) throws(CheckpointError)
        -> (tensor: StoredTensor, entry: TorchZipArchive.Entry) {
        guard record.shape.allSatisfy({ $0 >= 0 }), record.stride.count == record.shape.count,
              let byteCount = record.dtype.storageByteCount(shape: record.shape) else {
            throw .invalidShape(path: path, tensor: name, shape: record.shape)
        }
        var expected = 1
        for (size, stride) in zip(record.shape, record.stride).reversed() {
            if size != 1, stride != expected {
                throw .nonContiguousTensor(path: path, tensor: name, shape: record.shape, stride: record.stride)
            }
            expected *= size
        }
        let entryName = prefix + "data/" + record.storage.key
        guard let entry = entries[entryName] else {
            throw .invalidArchive(path: path, detail: "tensor \(name)'s storage \(entryName) is not in the archive")
        }
        guard !entry.compressed else {
            throw .invalidArchive(path: path, detail: "tensor \(name)'s storage \(entryName) is compressed; torch.save stores them uncompressed")
        }
        let elementSize = record.dtype.byteSize
        let (start, overflow) = record.storageOffset.multipliedReportingOverflow(by: elementSize)
        let available = min(entry.byteCount, record.storage.byteCount)
        guard record.storageOffset >= 0, !overflow, byteCount == 0 || start <= available - byteCount else {
            throw .storageOutOfRange(path: path, tensor: name, offset: record.storageOffset, elements: byteCount / elementSize,
                                     storageBytes: available)
        }
        return (StoredTensor(name: name, dtype: record.dtype, shape: record.shape, fileIndex: fileIndex,
                             fileOffset: entry.dataOffset + start, byteCount: byteCount), entry)
    }
}
