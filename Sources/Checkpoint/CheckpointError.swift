import Foundation
import IR

/// A failure finding, reading or writing checkpoint files; every message names the directory or file and, where
/// known, the tensor. The safetensors cases come first; the PyTorch `.bin` cases (archive, pickle, views) follow the
/// writer's.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// A model path that is not an existing directory.
    case directoryNotFound(path: String)
    /// A file that does not exist.
    case fileNotFound(path: String)
    /// A directory whose only weights are in formats mergegraph does not read; `files` names them
    /// (e.g. `model.gguf`, or `.bin` files other than transformers' `pytorch_model*.bin`).
    case unsupportedFormat(directory: String, files: [String])
    /// A directory with no weight files at all; `entries` lists what it has (at most a few names, empty when empty).
    case noCheckpoint(directory: String, entries: [String])
    /// A file or directory the operating system refuses to open or read (`reason`: the C library's message).
    case cannotOpen(path: String, reason: String)
    /// A file shorter than its format's smallest valid file, or one that ended before a read (sizes in bytes).
    case fileTooShort(path: String, fileSize: Int)
    /// A safetensors header length (bytes) that runs past the end of the file.
    case headerPastEndOfFile(path: String, headerLength: UInt64, fileSize: Int)
    /// A safetensors header that is not JSON.
    case headerNotJSON(path: String, detail: String)
    /// A safetensors header that is JSON but not an object.
    case headerNotObject(path: String)
    /// A header entry without a valid dtype, shape or data_offsets.
    case malformedTensorEntry(path: String, tensor: String, detail: String)
    /// A stored dtype mergegraph does not read (safetensors' `U16`, `U32`, `U64`, `F8_E8M0`, `F4`, …; torch saves none of them).
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// A shape with a negative dimension or an element count that overflows `Int`.
    case invalidShape(path: String, tensor: String, shape: [Int])
    /// A tensor's byte range `[begin, end)` outside the `dataSize`-byte data buffer.
    case offsetsOutOfRange(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    /// A tensor's byte range whose length differs from what its shape and dtype need.
    case offsetsMismatchShape(path: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    /// A tensor does not start where the previous one (in order of offsets) ends: a gap or an overlap.
    case offsetsNotContiguous(path: String, tensor: String, begin: Int, previous: String?, previousEnd: Int)
    /// The tensors end before the data region (trailing bytes) does.
    case dataRegionSizeMismatch(path: String, tensorsEnd: Int, dataSize: Int)
    /// A name written twice in one header.
    case duplicateTensorInHeader(path: String, tensor: String)
    /// A file got shorter between opening and reading it.
    case fileShrank(path: String, openedSize: Int, endedAt: Int)
    /// A tensor stored in two files of one checkpoint.
    case duplicateTensor(tensor: String, firstPath: String, secondPath: String)
    /// A shard index that is not JSON or has no `weight_map` of strings.
    case malformedIndex(path: String, detail: String)
    /// A shard the index names that does not exist (`tensor`: one tensor mapped to it).
    case missingShard(indexPath: String, shard: String, tensor: String)
    /// An index and shards that disagree about where `tensor` is.
    case indexMismatch(indexPath: String, tensor: String, detail: String)
    /// A tensor the checkpoint does not have (or a `StoredTensor` of another checkpoint).
    case tensorNotInCheckpoint(directory: String, tensor: String)
    /// A read of elements `[elementOffset, elementOffset + count)` outside a tensor of `elementCount` elements.
    case readOutOfRange(path: String, tensor: String, elementOffset: Int, count: Int, elementCount: Int)
    /// A writer layout that lists a tensor twice.
    case duplicateTensorInLayout(path: String, tensor: String)
    /// A write to a tensor that is not in the writer's layout.
    case unknownTensor(path: String, tensor: String)
    /// A write to elements already written (writes go front to back, each element once).
    case tensorAlreadyWritten(path: String, tensor: String)
    /// A write of more (or, for a whole-tensor write, other) than the tensor's element count.
    case elementCountMismatch(path: String, tensor: String, expected: Int, actual: Int)
    /// A shard finished before every element of `tensor` was written.
    case tensorNotWritten(path: String, tensor: String)
    /// A write or finish after the shard was finished.
    case writerFinished(path: String)
    /// A failed create, write or close (`reason`: the C library's message).
    case writeFailed(path: String, reason: String)
    /// A `.bin` in the legacy (pre-1.6, non-zip) `torch.save` format, which mergegraph does not read.
    case legacyPyTorchFormat(path: String)
    /// A `.bin` that is not a readable `torch.save` zip archive (truncated, not a zip, entries missing or compressed, a
    /// directory whose offsets or sizes contradict the file, a failed CRC).
    case invalidArchive(path: String, detail: String)
    /// A `data.pkl` using an opcode or global that `torch.save` does not write for a state dict (`detail` names it);
    /// refused before anything is built from it, never executed.
    case unsupportedPickle(path: String, detail: String)
    /// A `data.pkl` that is not a well-formed pickle of a state dict of tensors.
    case malformedPickle(path: String, detail: String)
    /// A tensor saved as a non-contiguous view (strides in elements), which cannot be read as one byte range.
    case nonContiguousTensor(path: String, tensor: String, shape: [Int], stride: [Int])
    /// A tensor view (`offset` and `elements` in elements) reaching past its storage's `storageBytes` bytes.
    case storageOutOfRange(path: String, tensor: String, offset: Int, elements: Int, storageBytes: Int)
    /// A model reference that is no directory; `remote` says what the remote resolver found for it (nil: none was
    /// asked, mergegraph reads local directories only in this run).
    case noSuchModel(path: String, remote: String?)
    /// A model reference naming a file (say, a checkpoint's `config.json`) where a model folder is meant.
    case modelIsFile(path: String)
    /// A model folder (a checkpoint; LoRA adapters are read apart) without `config.json`, which mergekit 0.1.5 loads
    /// for every model it merges.
    case missingConfig(directory: String)
    /// A model from a remote service (the Hugging Face Hub) that cannot be resolved or fetched; `detail` names the
    /// repo, what is wrong and what to do.
    case remote(reference: String, detail: String)
    /// A PEFT adapter directory whose `adapter_config.json` or tensors are missing or inconsistent (`path`: the file).
    case invalidAdapter(path: String, detail: String)
    /// A PEFT adapter using a feature mergegraph does not apply (`feature`: what and where, e.g. `use_dora: true`).
    case unsupportedAdapter(path: String, feature: String)

    /// The message shown to people: what is wrong and where.
    public var description: String {
        switch self {
        case let .directoryNotFound(path):
            return "checkpoint directory \(path) does not exist or is not a directory"
        case let .fileNotFound(path):
            return "file \(path) does not exist"
        case let .unsupportedFormat(directory, files):
            return "\(directory) has no checkpoint mergegraph reads (\(CheckpointFormat.expectedFiles)): it has "
                + "\(files.joined(separator: ", ")), which mergegraph does not read"
        case let .noCheckpoint(directory, entries):
            let contents = entries.isEmpty ? "it is empty" : "it has only \(entries.joined(separator: ", "))"
            return "\(directory) has no checkpoint (\(CheckpointFormat.expectedFiles)): \(contents)"
        case let .cannotOpen(path, reason):
            return "cannot open \(path): \(reason)"
        case let .fileTooShort(path, fileSize):
            return "\(path) is truncated or not a safetensors file: it is \(fileSize) bytes, shorter than the 8-byte header length"
        case let .headerPastEndOfFile(path, headerLength, fileSize):
            return "\(path) is truncated or not a safetensors file: header length \(headerLength) runs past the end of the \(fileSize)-byte file"
        case let .headerNotJSON(path, detail):
            return "\(path) is not a safetensors file: its header is not valid JSON (\(detail))"
        case let .headerNotObject(path):
            return "\(path) is not a safetensors file: its header is not a JSON object"
        case let .malformedTensorEntry(path, tensor, detail):
            return "tensor \(tensor) in \(path) has a malformed header entry: \(detail)"
        case let .unsupportedDType(path, tensor, dtype):
            let supported = DType.allCases.map(\.rawValue).joined(separator: ", ")
            return "tensor \(tensor) in \(path) has unsupported dtype \(dtype) (supported: \(supported))"
        case let .invalidShape(path, tensor, shape):
            return "tensor \(tensor) in \(path) has invalid shape \(shape) (dimensions must be non-negative and the element count must fit in Int)"
        case let .offsetsOutOfRange(path, tensor, begin, end, dataSize):
            return "tensor \(tensor) in \(path) has data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data buffer (file truncated?)"
        case let .offsetsMismatchShape(path, tensor, expectedBytes, actualBytes):
            return "tensor \(tensor) in \(path) has data_offsets spanning \(actualBytes) bytes, but its shape and dtype need \(expectedBytes) bytes"
        case let .offsetsNotContiguous(path, tensor, begin, previous, previousEnd):
            let after = previous.map { "tensor \($0) ends at byte \(previousEnd)" } ?? "the data region starts at byte 0"
            return "tensor \(tensor) in \(path) starts at byte \(begin) of the data region, but \(after): "
                + "safetensors tensors must cover the data region in order, without gaps or overlap"
        case let .dataRegionSizeMismatch(path, tensorsEnd, dataSize):
            return "\(path) is not a valid safetensors file: its tensors end at byte \(tensorsEnd) of the data region, "
                + "which is \(dataSize) bytes (the header and the file size disagree)"
        case let .duplicateTensorInHeader(path, tensor):
            return "tensor \(tensor) is listed twice in the header of \(path)"
        case let .fileShrank(path, openedSize, endedAt):
            return "\(path) ended at byte \(endedAt) while being read, but it was \(openedSize) bytes when opened: "
                + "the file changed during the merge (is it still being written or copied?)"
        case let .duplicateTensor(tensor, firstPath, secondPath):
            return "tensor \(tensor) appears in both \(firstPath) and \(secondPath)"
        case let .malformedIndex(path, detail):
            return "\(path) is not a valid shard index: \(detail)"
        case let .missingShard(indexPath, shard, tensor):
            return "\(indexPath) maps tensor \(tensor) to shard \(shard), which does not exist"
        case let .indexMismatch(indexPath, tensor, detail):
            return "\(indexPath) disagrees with the shards about tensor \(tensor): \(detail)"
        case let .tensorNotInCheckpoint(directory, tensor):
            return "tensor \(tensor) is not in the checkpoint \(directory)"
        case let .readOutOfRange(path, tensor, elementOffset, count, elementCount):
            return "read of elements [\(elementOffset), \(elementOffset) + \(count)) is outside tensor \(tensor) in \(path), which has \(elementCount) elements"
        case let .duplicateTensorInLayout(path, tensor):
            return "tensor \(tensor) is listed twice in the layout of \(path)"
        case let .unknownTensor(path, tensor):
            return "tensor \(tensor) is not in the layout of \(path)"
        case let .tensorAlreadyWritten(path, tensor):
            return "tensor \(tensor) was already written to \(path)"
        case let .elementCountMismatch(path, tensor, expected, actual):
            return "tensor \(tensor) in \(path) needs \(expected) elements, but \(actual) were given"
        case let .tensorNotWritten(path, tensor):
            return "tensor \(tensor) was never written to \(path)"
        case let .writerFinished(path):
            return "\(path) is already finished and closed"
        case let .writeFailed(path, reason):
            return "cannot write \(path): \(reason)"
        case let .legacyPyTorchFormat(path):
            return "\(path) is in the legacy (non-zip) torch.save format, which mergegraph does not read: re-save it with "
                + "torch.save(torch.load(path), path) or convert it to safetensors"
        case let .invalidArchive(path, detail):
            return "\(path) is not a readable torch.save archive: \(detail)"
        case let .unsupportedPickle(path, detail):
            return "\(path): data.pkl is refused: \(detail)"
        case let .malformedPickle(path, detail):
            return "\(path): data.pkl is not a state dict of tensors: \(detail)"
        case let .nonContiguousTensor(path, tensor, shape, stride):
            return "tensor \(tensor) in \(path) is a non-contiguous view (shape \(shape), stride \(stride)), which mergegraph "
                + "cannot read in place: save it with .contiguous()"
        case let .storageOutOfRange(path, tensor, offset, elements, storageBytes):
            return "tensor \(tensor) in \(path) views elements [\(offset), \(offset) + \(elements)) of a storage of only "
                + "\(storageBytes) bytes (file truncated?)"
        case let .modelIsFile(path):
            return "is a file; a model is the folder holding config.json and the weights"
                + " ('\((path as NSString).deletingLastPathComponent)'?)"
        case let .missingConfig(directory):
            return "\(directory) has no config.json: a model is the folder holding config.json and the weights "
                + "(mergekit loads every model's config.json and stops without it)"
        case let .noSuchModel(path, remote):
            // The reminder about the working directory only where it applies: a relative path.
            let missing = path.hasPrefix("/") ? "no such directory"
                : "no such directory (paths are relative to the working directory)"
            guard let remote else { return missing }
            return "\(missing), and as a Hugging Face repo id: \(remote)"
        case let .remote(_, detail):
            return detail
        case let .invalidAdapter(path, detail):
            return "\(path) is not a usable PEFT LoRA adapter: \(detail)"
        case let .unsupportedAdapter(path, feature):
            return "\(path): not implemented: LoRA adapters with \(feature) (mergegraph applies plain LoRA: r, lora_alpha, "
                + "use_rslora, rank_pattern, alpha_pattern, target_modules, fan_in_fan_out, modules_to_save, lora_bias)"
        }
    }
}

extension CheckpointError {
    /// The error for a model reference `path` that names no checkpoint folder: `.modelIsFile` when a file is there,
    /// else `.noSuchModel` with what the remote resolver said (`remote`).
    public static func missingModel(path: String, remote: String?) -> CheckpointError {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue {
            return .modelIsFile(path: path)
        }
        return .noSuchModel(path: path, remote: remote)
    }
}
