#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened read-only, read with `pread` (so its pages stay in the page cache, never in this process's
/// resident memory); closed when released.
final class InputFile: @unchecked Sendable {
    let path: String
    let size: Int
    private let descriptor: Int32

    /// Opens `path`, which must be a regular file. It is opened without blocking, so that a named pipe is refused at
    /// once instead of waiting for a writer (reads of a regular file never block either way).
    init(path: String) throws(CheckpointError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw .fileNotFound(path: path) }
            throw .cannotOpen(path: path, reason: errnoDescription(code))
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let reason = errnoDescription(errno)
            close(fd)
            throw .cannotOpen(path: path, reason: reason)
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .cannotOpen(path: path, reason: "not a regular file")
        }
        let size = Int(status.st_size)
        self.descriptor = fd
        self.path = path
        self.size = size
    }

    deinit {
        close(descriptor)
    }

    /// Copies `count` bytes at `offset` into `buffer`.
    func read(offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError) {
        var done = 0
        while done < count {
            let result = pread(descriptor, buffer + done, count - done, off_t(offset + done))
            if result < 0 {
                if errno == EINTR { continue }
                throw .cannotOpen(path: path, reason: "read failed: \(errnoDescription(errno))")
            }
            if result == 0 {
                // Reads stay within the size the file had when opened: it got shorter since.
                if offset + count <= size { throw .fileShrank(path: path, openedSize: size, endedAt: offset + done) }
                throw .fileTooShort(path: path, fileSize: offset + done)
            }
            done += result
        }
    }
}

/// The C library's text for an `errno` value.
func errnoDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}
