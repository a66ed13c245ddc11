import IR

/// A failure reading or writing safetensors files; every message names the file and, where known, the tensor.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case directoryNotFound(path: String)
    case fileNotFound(path: String)
    case noSafetensorsFiles(directory: String)
    case cannotOpen(path: String, reason: String)
    case fileTooShort(path: String, fileSize: Int)
    case headerPastEndOfFile(path: String, headerLength: UInt64, fileSize: Int)
    case headerNotJSON(path: String, detail: String)
    case headerNotObject(path: String)
    case malformedTensorEntry(path: String, tensor: String, detail: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case invalidShape(path: String, tensor: String, shape: [Int])
    case offsetsOutOfRange(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case offsetsMismatchShape(path: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    case duplicateTensor(tensor: String, firstPath: String, secondPath: String)
    case malformedIndex(path: String, detail: String)
    case missingShard(indexPath: String, shard: String, tensor: String)
    case indexMismatch(indexPath: String, tensor: String, detail: String)
    case tensorNotInCheckpoint(directory: String, tensor: String)
    case readOutOfRange(path: String, tensor: String, elementOffset: Int, count: Int, elementCount: Int)
    case duplicateTensorInLayout(path: String, tensor: String)
    case unknownTensor(path: String, tensor: String)
    case tensorAlreadyWritten(path: String, tensor: String)
    case elementCountMismatch(path: String, tensor: String, expected: Int, actual: Int)
    case tensorNotWritten(path: String, tensor: String)
    case writerFinished(path: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .directoryNotFound(path):
            return "checkpoint directory \(path) does not exist or is not a directory"
        case let .fileNotFound(path):
            return "file \(path) does not exist"
        case let .noSafetensorsFiles(directory):
            return "no .safetensors files in \(directory) (expected model.safetensors.index.json, model.safetensors or *.safetensors)"
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
        case let .duplicateTensor(tensor, firstPath, secondPath):
            return "tensor \(tensor) appears in both \(firstPath) and \(secondPath)"
        case let .malformedIndex(path, detail):
            return "\(path) is not a valid safetensors index: \(detail)"
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
        }
    }
}
