#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory; unmapped when released.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeRawPointer
    let size: Int
    /// Kept open for `read`.
    private let descriptor: Int32

    /// Maps `path`; files shorter than the 8-byte header length are rejected.
    init(path: String) throws(SafetensorsError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
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
        guard size >= 8 else {
            close(fd)
            throw .fileTooShort(path: path, fileSize: size)
        }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), mapping != MAP_FAILED else {
            let reason = errnoDescription(errno)
            close(fd)
            throw .cannotOpen(path: path, reason: "mmap failed: \(reason)")
        }
        self.descriptor = fd
        self.path = path
        self.base = UnsafeRawPointer(mapping)
        self.size = size
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
        close(descriptor)
    }

    /// Copies `count` bytes at `offset` into `buffer` with `pread`, so the file's pages never enter this
    /// process's resident memory (the page cache keeps them).
    func read(offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(SafetensorsError) {
        var done = 0
        while done < count {
            let result = pread(descriptor, buffer + done, count - done, off_t(offset + done))
            if result < 0 {
                if errno == EINTR { continue }
                throw .cannotOpen(path: path, reason: "read failed: \(errnoDescription(errno))")
            }
            if result == 0 { throw .fileTooShort(path: path, fileSize: offset + done) }
            done += result
        }
    }
}

/// The C library's text for an `errno` value.
func errnoDescription(_ code: Int32) -> String {
    String(cString: strerror(code))
}
