import Checkpoint
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One Hub repo at one commit, in the cache (`ResolvedSnapshot`): the commit's files as the Hub lists them (or,
/// offline, as the cache has them), its snapshot directory, and the bytes of its files from there or, for files not
/// cached, by HTTP Range requests.
final class HubSnapshot: ResolvedSnapshot, @unchecked Sendable {
    let reference: String
    let repo: String
    let commit: String
    let directory: String
    /// The Hub's listing of the commit; nil when resolved from the cache alone (offline).
    let remote: [String: HubClient.RemoteFile]?
    let files: [String]
    private let client: HubClient

    init(reference: String, repo: String, commit: String, directory: String, remote: [HubClient.RemoteFile]?,
         localFiles: [String], client: HubClient) {
        self.reference = reference
        self.repo = repo
        self.commit = commit
        self.directory = directory
        self.remote = remote.map { Dictionary($0.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a }) }
        files = remote.map { $0.map(\.path).sorted() } ?? localFiles
        self.client = client
    }

    /// The local size of `file` (symlinks followed), nil when it is not there.
    private func localSize(_ file: String) -> Int? {
        var status = stat()
        guard stat("\(directory)/\(file)", &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(status.st_size)
    }

    /// Present in the snapshot directory, and of the size the Hub lists (a truncated blob is not taken as complete).
    func isLocal(_ file: String) -> Bool {
        guard let size = localSize(file) else { return false }
        return remote?[file].map { $0.size == size } ?? true
    }

    func size(of file: String) -> Int? {
        remote?[file]?.size ?? localSize(file)
    }

    func read(_ file: String, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError) {
        if isLocal(file) {
            let path = "\(directory)/\(file)"
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
            defer { close(fd) }
            var done = 0
            while done < count {
                let n = pread(fd, buffer + done, count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw .fileTooShort(path: path, fileSize: offset + done) }
                done += n
            }
            return
        }
        let data = try client.read(repo, commit: commit, file: file, offset: offset, count: count)
        data.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: count) }
    }
}
