#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CFileOps

/// A file created (or truncated) for writing at explicit offsets; write errors carry the path.
///
/// Writes whose bytes sit at the same place modulo `uncachedAlignment` in memory as in the file (`write(_:count:at:)`
/// checks) go past the page cache for their whole aligned blocks, through a second descriptor opened with
/// `mg_open_write_uncached` (`O_DIRECT`), and through the page cache only for the partial blocks at their ends. A
/// merge writes gigabytes that it never reads back: through the page cache they would evict the inputs' cached
/// pages (which a statistics sweep reads again) and cost a copy plus a fresh page per 4 KiB (on a VM that hands
/// freed memory back to its host, 2.1 GB took 5.0 s of system time this way, 0.8 s uncached). Where the file system
/// refuses uncached writes (tmpfs) or is not a local block-device one (`mg_open_write_uncached`: network and FUSE file
/// systems would make each write a synchronous round trip), every write goes through the page cache.
final class OutputFile {
    let path: String
    private var descriptor: Int32?
    /// The uncached descriptor, while the file system takes uncached writes.
    private var uncached: Int32?

    /// The block of uncached writes, in bytes: their file offsets, memory addresses and lengths are multiples of it
    /// (4096 bytes, the page size, is a multiple of the logical block size of common devices).
    static let uncachedAlignment = 4096

    /// Whether whole aligned blocks go past the page cache (until the file system refuses one).
    var writesPastPageCache: Bool { uncached != nil }

    /// Creates or truncates `path` (mode 0644).
    /// - Throws: `CheckpointError.writeFailed` naming `path` when it cannot be created.
    init(creating path: String) throws(CheckpointError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .writeFailed(path: path, reason: errnoDescription(errno)) }
        self.path = path
        self.descriptor = fd
        let direct = mg_open_write_uncached(fd)
        self.uncached = direct >= 0 ? direct : nil
    }

    deinit {
        if let descriptor { close(descriptor) }
        if let uncached { close(uncached) }
    }

    /// Writes all `count` bytes at `offset`, retrying short writes and interrupted calls. When `bytes` and `offset`
    /// agree modulo `uncachedAlignment`, the whole blocks between them go past the page cache.
    /// - Throws: `CheckpointError.writeFailed` naming the file (with the system's reason), `.writerFinished`.
    func write(_ bytes: UnsafeRawPointer, count: Int, at offset: Int) throws(CheckpointError) {
        guard descriptor != nil else { throw .writerFinished(path: path) }
        let a = Self.uncachedAlignment
        guard uncached != nil, (Int(bitPattern: bytes) - offset) % a == 0 else {
            return try writeCached(bytes, count: count, at: offset)
        }
        let start = (offset + a - 1) / a * a, end = (offset + count) / a * a
        guard start < end else { return try writeCached(bytes, count: count, at: offset) }
        try writeCached(bytes, count: start - offset, at: offset)
        let done = try writeUncached(bytes + (start - offset), count: end - start, at: start)
        try writeCached(bytes + (start + done - offset), count: offset + count - (start + done), at: start + done)
    }

    /// Writes `bytes` at `offset`.
    /// - Throws: as `write(_:count:at:)`.
    func write(_ bytes: [UInt8], at offset: Int) throws(CheckpointError) {
        try write(bytes, count: bytes.count, at: offset)
    }

    /// Closes the file, reporting errors the kernel defers to close (e.g. on network file systems).
    /// - Throws: `CheckpointError.writeFailed` naming the file, `.writerFinished` when already closed.
    func finish() throws(CheckpointError) {
        guard let descriptor else { throw .writerFinished(path: path) }
        self.descriptor = nil
        if let uncached {
            self.uncached = nil
            guard close(uncached) == 0 else {
                let reason = errnoDescription(errno)
                close(descriptor)
                throw .writeFailed(path: path, reason: reason)
            }
        }
        guard close(descriptor) == 0 else { throw .writeFailed(path: path, reason: errnoDescription(errno)) }
    }

    /// Writes through the page cache.
    private func writeCached(_ bytes: UnsafeRawPointer, count: Int, at offset: Int) throws(CheckpointError) {
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

    /// Writes aligned whole blocks past the page cache and returns how many bytes it wrote (a multiple of
    /// `uncachedAlignment`); the caller writes the rest through the page cache. A file system that refuses
    /// (`EINVAL`) closes the uncached descriptor for good; what this call wrote before that is counted.
    private func writeUncached(_ bytes: UnsafeRawPointer, count: Int, at offset: Int) throws(CheckpointError) -> Int {
        var written = 0
        while written < count, let uncached {
            let result = pwrite(uncached, bytes + written, count - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                if errno == EINVAL {
                    close(uncached)
                    self.uncached = nil
                    break
                }
                throw .writeFailed(path: path, reason: errnoDescription(errno))
            }
            if result == 0 { throw .writeFailed(path: path, reason: "pwrite wrote nothing") }
            written += result
            if written % Self.uncachedAlignment != 0 { break }
        }
        return written / Self.uncachedAlignment * Self.uncachedAlignment
    }
}
