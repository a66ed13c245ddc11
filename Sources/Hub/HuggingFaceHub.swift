import Checkpoint
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Hugging Face Hub repo ids as models (`ModelResolver`): a repo resolves to its snapshot directory in the Hugging
/// Face cache (`HubCache`, huggingface_hub's layout), at the commit its revision names on the Hub, or, offline or with
/// the Hub unreachable, in the cache's `refs`. Missing files are downloaded from `HubSettings.endpoint` several at a
/// time, resumed with HTTP Range from what an interrupted run left (`blobs/ETAG.incomplete`), verified against the
/// Hub's SHA-256 (LFS files) or git blob id before they are linked into the snapshot, under huggingface_hub's lock.
public final class HuggingFaceHub: ModelResolver, @unchecked Sendable {
    public let settings: HubSettings
    public let cache: HubCache
    private let client: HubClient
    /// Called as downloads progress (from download threads).
    private let onProgress: (@Sendable (DownloadProgress) -> Void)?
    /// Called with warnings: a Hub that cannot be reached while the cache has the model.
    private let onWarning: (@Sendable (String) -> Void)?
    private let snapshots = Mutex<[String: HubSnapshot]>([:])
    /// The permission bits new blobs get (0666 without the umask, as huggingface_hub's `_chmod_and_move`).
    private let blobMode: mode_t

    public init(settings: HubSettings, onProgress: (@Sendable (DownloadProgress) -> Void)? = nil,
                onWarning: (@Sendable (String) -> Void)? = nil) {
        self.settings = settings
        cache = HubCache(root: settings.cacheDirectory)
        client = HubClient(settings: settings)
        self.onProgress = onProgress
        self.onWarning = onWarning
        let mask = umask(0o022)
        umask(mask)
        blobMode = 0o666 & ~mask
    }

    public func accepts(_ reference: String) -> Bool { HubSettings.isRepoID(reference) }

    /// The snapshot of `repo` at `revision` (default `main`): the commit and file list from the Hub; offline, or
    /// when the Hub cannot be reached (with a warning), from the cache's refs and snapshot directory.
    /// - Throws: `CheckpointError.noSuchModel` for a repo the Hub does not have (or hides); `.remote` for a gated
    ///   repo, a missing revision, an unreachable Hub with nothing cached, offline with nothing cached.
    public func resolve(_ repo: String, revision: String?) throws(CheckpointError) -> any ResolvedSnapshot {
        let rev = revision ?? "main"
        let reference = revision.map { "\(repo)@\($0)" } ?? repo
        if let known = snapshots.withLock({ $0[reference] }) { return known }
        let snapshot: HubSnapshot
        if settings.offline {
            guard let cached = cachedSnapshot(repo, revision: rev, reference: reference) else {
                throw .noSuchModel(path: reference, remote: "HF_HUB_OFFLINE is set and the cache "
                                   + "\(settings.cacheDirectory) has no snapshot of '\(reference)' (revision '\(rev)'): "
                                   + "unset HF_HUB_OFFLINE to download it, or point HF_HUB_CACHE or --transformers-cache at "
                                   + "the cache that has it")
            }
            snapshot = cached
        } else {
            do {
                let commit = try client.commit(repo, revision: rev)
                let tree = try client.tree(repo, commit: commit)
                snapshot = HubSnapshot(reference: reference, repo: repo, commit: commit,
                                       directory: cache.snapshot(repo, commit: commit), remote: tree, localFiles: [],
                                       client: client)
                try? cache.setRef(repo, revision: rev, commit: commit)
            } catch {
                guard case .remote(_, let detail) = error, detail.hasPrefix(HubClient.unreachablePrefix) else { throw error }
                guard let cached = cachedSnapshot(repo, revision: rev, reference: reference) else {
                    throw .noSuchModel(path: reference, remote: detail)
                }
                onWarning?("warning: \(detail); using the cached snapshot \(cached.commit) of '\(reference)'")
                snapshot = cached
            }
        }
        snapshots.withLock { $0[reference] = snapshot }
        return snapshot
    }

    /// The snapshot the cache has for `revision`, with the files it holds; nil when it has none.
    private func cachedSnapshot(_ repo: String, revision: String, reference: String) -> HubSnapshot? {
        guard let commit = cache.commit(repo, revision: revision) else { return nil }
        let directory = cache.snapshot(repo, commit: commit)
        guard FileManager.default.fileExists(atPath: directory) else { return nil }
        return HubSnapshot(reference: reference, repo: repo, commit: commit, directory: directory, remote: nil,
                           localFiles: cache.files(repo, commit: commit), client: client)
    }

    // MARK: downloads

    /// One file to download.
    private struct Job: Sendable {
        var snapshot: HubSnapshot
        var file: HubClient.RemoteFile
    }

    /// Downloads every requested file that is not in its snapshot yet, `settings.parallelDownloads` at a time,
    /// reporting progress; the first failure stops the others from starting and is thrown.
    /// - Throws: `CheckpointError.remote` naming the repo and file: offline, not on the Hub, an interrupted
    ///   transfer (resumed by the next run), a download that twice did not match its digest, a cache not writable.
    public func fetch(_ requests: [(snapshot: any ResolvedSnapshot, files: [String])]) throws(CheckpointError) {
        var queue: [Job] = []
        for (snapshot, files) in requests {
            guard let snapshot = snapshot as? HubSnapshot else { continue }
            for name in files where !snapshot.isLocal(name) {
                guard let file = snapshot.remote?[name] else {
                    throw .remote(reference: snapshot.reference, detail: settings.offline
                        ? "HF_HUB_OFFLINE is set and '\(snapshot.reference)' file \(name) is not in the cache "
                            + "\(settings.cacheDirectory): unset HF_HUB_OFFLINE to download it"
                        : "'\(snapshot.reference)' file \(name) is not in the cache and the Hub could not be reached")
                }
                queue.append(Job(snapshot: snapshot, file: file))
            }
        }
        let jobs = queue
        guard !jobs.isEmpty else { return }
        cache.tagAsCache()
        let state = FetchState(DownloadProgress(fileCount: jobs.count, byteCount: jobs.reduce(0) { $0 + $1.file.size }))
        let group = DispatchGroup()
        let report = onProgress
        for _ in 0..<min(max(1, settings.parallelDownloads), jobs.count) {
            group.enter()
            let worker = Thread { [self] in
                defer { group.leave() }
                while let index = state.nextJob(), index < jobs.count {
                    do throws(CheckpointError) {
                        try download(jobs[index]) { done, fetched in
                            report?(state.update { $0.bytesDone += done; $0.bytesFetched += fetched })
                        }
                        report?(state.update { $0.filesDone += 1 })
                    } catch {
                        state.fail(error)
                    }
                }
            }
            worker.start()
        }
        group.wait()
        if let error = state.failure { throw error }
    }

    /// Downloads one file into its blob (resuming `ETAG.incomplete`, verifying the digest) under the blob's lock,
    /// then links it into the snapshot. `advance(done, fetched)` reports bytes: `done` may be negative when a
    /// download restarts.
    private func download(_ job: Job, advance: @escaping (Int, Int) -> Void) throws(CheckpointError) {
        let (snapshot, file) = (job.snapshot, job.file)
        let repo = snapshot.repo
        let blob = cache.blob(repo, etag: file.etag)
        let name = "'\(snapshot.reference)' file \(file.path)"
        func failed(_ what: String) -> CheckpointError { .remote(reference: snapshot.reference, detail: "\(name): \(what)") }
        let lockPath = cache.lock(repo, etag: file.etag)
        do {
            try FileManager.default.createDirectory(atPath: (blob as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: (lockPath as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
        } catch {
            throw failed("cannot create the cache folders in \(settings.cacheDirectory) (\(error.localizedDescription))")
        }
        let lock = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw failed("cannot open the lock \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(lock, LOCK_UN) }

        if FileManager.default.fileExists(atPath: blob) {
            // A blob another snapshot (or tool) put there: used once it checks out, else fetched again.
            var digest = BlobDigest(size: file.size, lfsSHA256: file.sha256, gitOID: file.oid)
            if (try? digest.update(fileAt: blob)) != nil, digest.matches, fileSize(blob) == file.size {
                advance(file.size, 0)
                return try link(job)
            }
            unlink(blob)
        }
        let partial = blob + ".incomplete"
        var mismatches = 0
        var stalls = 0
        while true {
            var start = fileSize(partial) ?? 0
            if start > file.size {
                truncate(partial, 0)
                start = 0
            }
            var digest = BlobDigest(size: file.size, lfsSHA256: file.sha256, gitOID: file.oid)
            do { try digest.update(fileAt: partial, count: start) } catch { start = 0 }
            guard let handle = FileHandle.create(partial, truncating: start == 0) else {
                throw failed("cannot write \(partial): \(String(cString: strerror(errno)))")
            }
            advance(start, 0)
            var received = start
            var restarted = false
            var transferError: CheckpointError?
            // A run killed after the last byte but before the rename left every byte: a request for `bytes=SIZE-`
            // would be answered 416, so those bytes go straight to the digest check (and are fetched again if wrong).
            if start < file.size {
                do {
                    try client.download(repo, commit: snapshot.commit, file: file.path, from: start) { fromZero, chunk in
                        if fromZero && !restarted {
                            restarted = true
                            try? handle.truncate(atOffset: 0)
                            digest = BlobDigest(size: file.size, lfsSHA256: file.sha256, gitOID: file.oid)
                            advance(-received, 0)
                            received = 0
                        }
                        guard received + chunk.count <= file.size else {
                            throw HubClient.SinkFailure(message: "the Hub sent more than the \(file.size) bytes it lists")
                        }
                        do { try handle.write(contentsOf: chunk) } catch {
                            throw HubClient.SinkFailure(message: "cannot write \(partial): \(error.localizedDescription)")
                        }
                        digest.update(chunk)
                        received += chunk.count
                        advance(chunk.count, chunk.count)
                    }
                } catch {
                    transferError = error
                }
            }
            try? handle.close()
            if let transferError {
                // A transfer that stopped part way is resumed (a few times, while it makes progress), then the
                // partial file is kept for the next run.
                stalls += 1
                advance(-received, 0)
                guard received > start, stalls <= 3 else { throw transferError }
                continue
            }
            if received < file.size {
                stalls += 1
                advance(-received, 0)
                guard received > start, stalls <= 3 else {
                    throw failed("the Hub sent \(received) of \(file.size) bytes; the next run resumes from them")
                }
                continue
            }
            if digest.matches {
                chmod(partial, blobMode)
                guard rename(partial, blob) == 0 else {
                    throw failed("cannot move the download into \(blob): \(String(cString: strerror(errno)))")
                }
                return try link(job)
            }
            // Bytes that do not hash to the Hub's digest are never linked: fetched again from the start, once.
            unlink(partial)
            advance(-received, 0)
            mismatches += 1
            guard mismatches < 2 else {
                throw failed("the downloaded bytes do not match the Hub's \(file.sha256 == nil ? "git blob id" : "SHA-256") "
                             + "\(digest.expected) (got \(digest.hex())), twice; nothing was kept, try again")
            }
        }
    }

    /// Links the job's file into its snapshot (and records the ref).
    private func link(_ job: Job) throws(CheckpointError) {
        do {
            try cache.link(job.snapshot.repo, commit: job.snapshot.commit, file: job.file.path, etag: job.file.etag)
        } catch {
            throw .remote(reference: job.snapshot.reference, detail: "'\(job.snapshot.reference)' file \(job.file.path): "
                          + "cannot link it into \(job.snapshot.directory) (\(error.localizedDescription))")
        }
    }

    private func fileSize(_ path: String) -> Int? {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_size) : nil
    }
}

extension FileHandle {
    /// A handle writing at the end of `path` (created when missing; emptied first when `truncating`).
    static func create(_ path: String, truncating: Bool) -> FileHandle? {
        let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC | (truncating ? O_TRUNC : O_APPEND), 0o644)
        guard fd >= 0 else { return nil }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        _ = try? handle.seekToEnd()
        return handle
    }
}

/// The shared state of one `fetch`'s download threads: the next job, the progress, the first failure.
private final class FetchState: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var progress: DownloadProgress
    private var firstFailure: CheckpointError?

    init(_ progress: DownloadProgress) { self.progress = progress }

    /// The index of the next job to run, or nil once a download has failed.
    func nextJob() -> Int? {
        lock.withLock {
            guard firstFailure == nil else { return nil }
            defer { next += 1 }
            return next
        }
    }

    /// Applies `change` to the progress and returns it.
    func update(_ change: (inout DownloadProgress) -> Void) -> DownloadProgress {
        lock.withLock {
            change(&progress)
            return progress
        }
    }

    /// Records `error` unless another came first.
    func fail(_ error: CheckpointError) { lock.withLock { firstFailure = firstFailure ?? error } }

    var failure: CheckpointError? { lock.withLock { firstFailure } }
}
