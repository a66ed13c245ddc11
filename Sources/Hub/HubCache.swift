import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The Hugging Face cache as huggingface_hub lays it out (`file_download.py`), so that models Python tools downloaded
/// are used in place and what mergegraph downloads is theirs too:
///
/// ```
/// CACHE/models--ORG--NAME/blobs/ETAG                      file contents, named by the Hub's ETag (sha256 for LFS files)
/// CACHE/models--ORG--NAME/snapshots/COMMIT/FILE -> ../../blobs/ETAG   relative symlinks
/// CACHE/models--ORG--NAME/refs/REVISION                   the commit a branch or tag named (no newline)
/// CACHE/.locks/models--ORG--NAME/ETAG.lock                flock(2) while a blob is downloaded
/// CACHE/CACHEDIR.TAG
/// ```
///
/// A download in progress is `blobs/ETAG.incomplete` (resumed from where it stopped); huggingface_hub's own partial
/// files carry a random infix and are left alone.
public struct HubCache: Sendable {
    /// The cache directory.
    public let root: String

    public init(root: String) { self.root = root }

    /// `models--ORG--NAME` (huggingface_hub `repo_folder_name`).
    public static func folderName(repo: String) -> String {
        (["models"] + repo.split(separator: "/").map(String.init)).joined(separator: "--")
    }

    /// The repo's folder.
    public func repoFolder(_ repo: String) -> String { "\(root)/\(Self.folderName(repo: repo))" }

    /// Where the blob named `etag` is.
    public func blob(_ repo: String, etag: String) -> String { "\(repoFolder(repo))/blobs/\(etag)" }

    /// The snapshot directory of `commit`.
    public func snapshot(_ repo: String, commit: String) -> String { "\(repoFolder(repo))/snapshots/\(commit)" }

    /// The lock file guarding the download of blob `etag`.
    public func lock(_ repo: String, etag: String) -> String { "\(root)/.locks/\(Self.folderName(repo: repo))/\(etag).lock" }

    /// The commit `revision` names: the revision itself when it is a full commit hash, else what `refs/REVISION`
    /// says; nil when the cache has no such ref.
    public func commit(_ repo: String, revision: String) -> String? {
        if HubSettings.isCommitHash(revision) { return revision }
        guard let text = try? String(contentsOfFile: "\(repoFolder(repo))/refs/\(revision)", encoding: .utf8) else { return nil }
        return text.isEmpty ? nil : text
    }

    /// Records that `revision` (a branch or tag) is `commit`, as huggingface_hub does: written atomically, only when
    /// it changed, nothing for a commit hash.
    public func setRef(_ repo: String, revision: String, commit: String) throws {
        guard revision != commit, self.commit(repo, revision: revision) != commit else { return }
        let path = "\(repoFolder(repo))/refs/\(revision)"
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let temporary = "\(path).\(UUID().uuidString.prefix(8).lowercased()).tmp"
        try Data(commit.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot write \(path): \(reason)"])
        }
    }

    /// Links `file` of snapshot `commit` to blob `etag` with a relative symlink (`../../blobs/ETAG`, one more `../`
    /// per folder in `file`), replacing what was there.
    public func link(_ repo: String, commit: String, file: String, etag: String) throws {
        let path = "\(snapshot(repo, commit: commit))/\(file)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let depth = file.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/\(etag)"
        if (try? fm.destinationOfSymbolicLink(atPath: path)) == target { return }
        unlink(path)
        try fm.createSymbolicLink(atPath: path, withDestinationPath: target)
    }

    /// Every file of snapshot `commit` (relative paths, following symlinks to blobs that exist).
    public func files(_ repo: String, commit: String) -> [String] {
        let directory = snapshot(repo, commit: commit)
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        return enumerator.compactMap { $0 as? String }.filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: "\(directory)/\(name)", isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }.sorted()
    }

    /// Writes `CACHEDIR.TAG` (the cache directory tagging standard) if the cache has none, as huggingface_hub does.
    public func tagAsCache() {
        let path = "\(root)/CACHEDIR.TAG"
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let text = "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n"
            + "# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n"
        try? Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
}
