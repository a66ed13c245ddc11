#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file created (or truncated) for writing at explicit offsets; write errors carry the path.
final class OutputFile {
    let path: String
    private var descriptor: Int32?

    init(creating path: String) throws(CheckpointError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .writeFailed(path: path, reason: errnoDescription(errno)) }
        self.path = path
        self.descriptor = fd
    }

    deinit {
        if let descriptor { close(descriptor) }
    }

    /// Writes all `count` bytes at `offset`, retrying short writes and interrupted calls.
    func write(_ bytes: UnsafeRawPointer, count: Int, at offset: Int) throws(CheckpointError) {
        guard let descriptor else { throw .writerFinished(path: path) }
        var written = 0
        while written < count {
            let result = pwrite(descriptor, bytes + written, count - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(path: path, reason: errnoDescription(errno))
            }
            if result == 0 { throw .writeFailed(path: path, reason: "pwrite wrote nothing") }
            written += result
        }
    }

    /// Writes `bytes` at `offset`.
    func write(_ bytes: [UInt8], at offset: Int) throws(CheckpointError) {
        try write(bytes, count: bytes.count, at: offset)
    }

    /// Closes the file, reporting errors the kernel defers to close (e.g. on network file systems).
    func finish() throws(CheckpointError) {
        guard let descriptor else { throw .writerFinished(path: path) }
        self.descriptor = nil
        guard close(descriptor) == 0 else { throw .writeFailed(path: path, reason: errnoDescription(errno)) }
    }
}
