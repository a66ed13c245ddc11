import Foundation
import IR

/// The parsed and validated JSON header of one safetensors file.
struct SafetensorsHeader {
    let tensors: [StoredTensor]
    let metadata: [String: String]

    /// Reads and parses the header of `file`, checking every tensor's dtype, shape and byte range against it.
    init(file: InputFile, fileIndex: Int) throws(CheckpointError) {
        try self.init(path: file.path, size: file.size, fileIndex: fileIndex) { offset, count, buffer throws(CheckpointError) in
            try file.read(offset: offset, count: count, into: buffer)
        }
    }

    /// Parses the header of the `size`-byte safetensors file `path` whose bytes `read(offset, count, buffer)` copies
    /// (two reads: the 8-byte length, then the header), checking every tensor against it.
    init(path: String, size: Int, fileIndex: Int,
         read: (Int, Int, UnsafeMutableRawPointer) throws(CheckpointError) -> Void) throws(CheckpointError) {
        guard size >= 8 else { throw .fileTooShort(path: path, fileSize: size) }
        var headerLength: UInt64 = 0
        try withUnsafeMutableBytes(of: &headerLength) { bytes throws(CheckpointError) in
            try read(0, 8, bytes.baseAddress!)
        }
        headerLength = UInt64(littleEndian: headerLength)
        guard let length = Int(exactly: headerLength), length <= size - 8 else {
            throw .headerPastEndOfFile(path: path, headerLength: headerLength, fileSize: size)
        }
        let text = UnsafeMutableRawPointer.allocate(byteCount: max(1, length), alignment: 1)
        defer { text.deallocate() }
        try read(8, length, text)
        let json = [UInt8](UnsafeRawBufferPointer(start: text, count: length))
        let root: JSONValue
        do {
            root = try JSONParser.parse(json)
        } catch {
            throw .headerNotJSON(path: path, detail: error.description)
        }
        // Our own parser keeps every member of an object, so a name written twice is seen (not last-wins).
        guard case .object(let entries) = root else { throw .headerNotObject(path: path) }

        let dataStart = 8 + length
        let dataSize = size - dataStart
        var tensors: [StoredTensor] = []
        var metadata: [String: String] = [:]
        var seen = Set<String>()
        var ranges: [(name: String, begin: Int, end: Int)] = []
        for (name, value) in entries {
            guard seen.insert(name).inserted else { throw .duplicateTensorInHeader(path: path, tensor: name) }
            if name == "__metadata__" {
                metadata = try Self.parseMetadata(value, path: path)
                continue
            }
            let entry = try TensorEntry(name: name, value: value, path: path, dataSize: dataSize)
            ranges.append((name, entry.begin, entry.end))
            tensors.append(StoredTensor(
                name: name, dtype: entry.dtype, shape: entry.shape, fileIndex: fileIndex,
                fileOffset: dataStart + entry.begin, byteCount: entry.end - entry.begin))
        }
        try Self.checkTiling(ranges, dataSize: dataSize, path: path)
        self.tensors = tensors.sorted { $0.name < $1.name }
        self.metadata = metadata
    }

    /// The reference implementation's rule (`Metadata::validate` and `read_metadata` in safetensors' `tensor.rs`):
    /// taken in order of their offsets, tensors start where the previous one ends (the first at 0), without gaps
    /// or overlap, and the last ends where the file does.
    private static func checkTiling(_ ranges: [(name: String, begin: Int, end: Int)], dataSize: Int,
                                    path: String) throws(CheckpointError) {
        var end = 0
        var previous: String?
        for range in ranges.sorted(by: { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }) {
            guard range.begin == end else {
                throw .offsetsNotContiguous(path: path, tensor: range.name, begin: range.begin, previous: previous,
                                            previousEnd: end)
            }
            end = range.end
            previous = range.name
        }
        guard end == dataSize else { throw .dataRegionSizeMismatch(path: path, tensorsEnd: end, dataSize: dataSize) }
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws(CheckpointError) -> [String: String] {
        guard case .object(let members) = value else {
            throw .malformedTensorEntry(path: path, tensor: "__metadata__", detail: "must be an object of strings")
        }
        var metadata: [String: String] = [:]
        for (key, item) in members {
            guard let text = item.stringValue else {
                throw .malformedTensorEntry(path: path, tensor: "__metadata__", detail: "must be an object of strings")
            }
            metadata[key] = text
        }
        return metadata
    }
}

/// One tensor's header entry (`dtype`, `shape`, `data_offsets`), validated against the data buffer.
private struct TensorEntry {
    let dtype: DType
    let shape: [Int]
    let begin: Int
    let end: Int

    init(name: String, value: JSONValue, path: String, dataSize: Int) throws(CheckpointError) {
        guard case .object = value else {
            throw .malformedTensorEntry(path: path, tensor: name, detail: "expected an object with dtype, shape and data_offsets")
        }
        guard let dtypeName = value["dtype"]?.stringValue else {
            throw .malformedTensorEntry(path: path, tensor: name, detail: "missing or non-string dtype")
        }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            throw .unsupportedDType(path: path, tensor: name, dtype: dtypeName)
        }
        guard let shape = Self.integers(value["shape"]) else {
            throw .malformedTensorEntry(path: path, tensor: name, detail: "shape must be an array of integers")
        }
        guard let offsets = Self.integers(value["data_offsets"]), offsets.count == 2 else {
            throw .malformedTensorEntry(path: path, tensor: name, detail: "data_offsets must be two integers [begin, end]")
        }
        guard let expectedBytes = dtype.storageByteCount(shape: shape) else {
            throw .invalidShape(path: path, tensor: name, shape: shape)
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end, end <= dataSize else {
            throw .offsetsOutOfRange(path: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }
        guard end - begin == expectedBytes else {
            throw .offsetsMismatchShape(path: path, tensor: name, expectedBytes: expectedBytes, actualBytes: end - begin)
        }
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end
    }

    private static func integers(_ value: JSONValue?) -> [Int]? {
        guard case .array(let items)? = value else { return nil }
        var result: [Int] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard let integer = item.intValue else { return nil }
            result.append(integer)
        }
        return result
    }
}
