import Checkpoint
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The subset of the Hugging Face Hub's HTTP API that downloads use (as huggingface_hub calls it): a revision's
/// commit (`GET /api/models/REPO/revision/REV`), the commit's files (`GET /api/models/REPO/tree/COMMIT?recursive=true`,
/// paged by `Link` headers), and file bytes (`GET /REPO/resolve/COMMIT/FILE`, with `Range`). Every failure becomes a
/// `CheckpointError` naming the repo and what to do, from the Hub's `X-Error-Code` header.
final class HubClient: Sendable {
    /// One file of a commit, as the tree lists it.
    struct RemoteFile: Sendable, Hashable {
        var path: String
        var size: Int
        /// The git blob id.
        var oid: String
        /// The LFS SHA-256, for files stored in LFS.
        var sha256: String?

        /// What the cache names its blob by: the Hub's ETag (the SHA-256 for LFS files, else the git blob id).
        var etag: String { sha256 ?? oid }
    }

    let settings: HubSettings

    init(settings: HubSettings) { self.settings = settings }

    /// The commit `revision` of `repo` is at.
    /// - Throws: `CheckpointError.noSuchModel` when the repo does not exist (or is private without access);
    ///   `.remote` for a gated repo, a revision that does not exist, an unreachable Hub.
    func commit(_ repo: String, revision: String) throws(CheckpointError) -> String {
        let result = try send("GET", "/api/models/\(repo)/revision/\(Self.encode(revision, keepingSlashes: false))",
                              repo: repo, revision: revision)
        guard let object = try? JSONSerialization.jsonObject(with: result.body) as? [String: Any],
              let sha = object["sha"] as? String, HubSettings.isCommitHash(sha) else {
            throw .remote(reference: repo, detail: "\(settings.endpoint) answered the revision request for '\(repo)' "
                          + "without a commit hash: is HF_ENDPOINT a Hugging Face Hub?")
        }
        return sha
    }

    /// Every file of `repo` at `commit`.
    /// - Throws: as `commit(_:revision:)`, and `.remote` for a listing that is not the Hub's JSON.
    func tree(_ repo: String, commit: String) throws(CheckpointError) -> [RemoteFile] {
        var files: [RemoteFile] = []
        var next: String? = "/api/models/\(repo)/tree/\(commit)?recursive=true&expand=false"
        while let path = next {
            let result = try send("GET", path, repo: repo, revision: commit)
            guard let entries = try? JSONSerialization.jsonObject(with: result.body) as? [[String: Any]] else {
                throw .remote(reference: repo, detail: "\(settings.endpoint) answered the file listing of '\(repo)' with "
                              + "something that is not a list of files: is HF_ENDPOINT a Hugging Face Hub?")
            }
            for entry in entries where entry["type"] as? String == "file" {
                guard let path = entry["path"] as? String, let size = (entry["size"] as? NSNumber)?.intValue,
                      let oid = entry["oid"] as? String else { continue }
                let lfs = (entry["lfs"] as? [String: Any])?["oid"] as? String
                files.append(RemoteFile(path: path, size: size, oid: oid, sha256: lfs))
            }
            next = Self.nextPage(result.headers["link"]).map { link in
                link.hasPrefix(settings.endpoint) ? String(link.dropFirst(settings.endpoint.count)) : link
            }
        }
        return files
    }

    /// Bytes `offset ..< offset + count` of `file` at `commit`, by a Range request.
    /// - Throws: as `commit(_:revision:)`; `.remote` when fewer bytes come back.
    func read(_ repo: String, commit: String, file: String, offset: Int, count: Int) throws(CheckpointError) -> Data {
        var collected = Data()
        var ranged = true
        _ = try send("GET", Self.resolvePath(repo, commit, file), repo: repo, revision: commit, file: file,
                     range: "bytes=\(offset)-\(offset + count - 1)") { status, chunk in
            // A server that ignores Range sends the whole file: keep the bytes asked for, then stop.
            ranged = status == 206
            collected.append(chunk)
            if collected.count >= (ranged ? 0 : offset) + count { throw EnoughBytes() }
        }
        let skip = ranged ? 0 : offset
        guard collected.count >= skip + count else {
            throw .remote(reference: repo, detail: "'\(repo)' file \(file): asked for bytes \(offset)..<\(offset + count), "
                          + "got \(max(0, collected.count - skip))")
        }
        return collected.subdata(in: skip..<(skip + count))
    }

    /// Downloads `file` at `commit` from byte `start` on, handing `sink(restarted, chunk)` the bytes as they come:
    /// `restarted` is true when the server ignored the range and sent the file from its first byte.
    /// - Throws: as `commit(_:revision:)`; a `CheckpointError.remote` for a transfer cut short, naming the file.
    func download(_ repo: String, commit: String, file: String, from start: Int,
                  sink: @escaping (Bool, Data) throws -> Void) throws(CheckpointError) {
        _ = try send("GET", Self.resolvePath(repo, commit, file), repo: repo, revision: commit, file: file,
                     range: start > 0 ? "bytes=\(start)-" : nil, timeoutMessage: "the download stalled") { status, chunk in
            try sink(start > 0 && status == 200, chunk)
        }
    }

    // MARK: requests

    /// Thrown by a sink that has what it wanted.
    private struct EnoughBytes: Error {}

    /// Thrown by a download's sink that cannot go on (the file cannot be written, the Hub sends too much): the
    /// transfer stops with `message`.
    struct SinkFailure: Error {
        let message: String
    }

    /// How the error of a Hub that cannot be reached begins (`HuggingFaceHub` then falls back to the cache).
    static let unreachablePrefix = "cannot reach the Hugging Face Hub"

    /// `/REPO/resolve/COMMIT/FILE`.
    static func resolvePath(_ repo: String, _ commit: String, _ file: String) -> String {
        "/\(repo)/resolve/\(commit)/\(encode(file, keepingSlashes: true))"
    }

    /// Percent-encodes `text` for a URL path (Python's `quote`, `/` kept or not).
    static func encode(_ text: String, keepingSlashes: Bool) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        if keepingSlashes { allowed.insert("/") }
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// The `next` URL of a `Link` header.
    static func nextPage(_ link: String?) -> String? {
        guard let link else { return nil }
        for part in link.split(separator: ",") where part.contains("rel=\"next\"") {
            guard let open = part.firstIndex(of: "<"), let close = part.firstIndex(of: ">") else { continue }
            return String(part[part.index(after: open)..<close])
        }
        return nil
    }

    /// Sends a request to the Hub and checks its status.
    private func send(_ method: String, _ path: String, repo: String, revision: String, file: String? = nil,
                      range: String? = nil, timeoutMessage: String? = nil,
                      sink: ((Int, Data) throws -> Void)? = nil) throws(CheckpointError) -> HTTPTransfer.Result {
        guard !settings.offline else {
            throw .remote(reference: repo, detail: "HF_HUB_OFFLINE is set, so '\(repo)' cannot be fetched from "
                          + "\(settings.endpoint): \(file.map { "its file \($0) is" } ?? "it is") not in the cache "
                          + "\(settings.cacheDirectory); unset HF_HUB_OFFLINE to download it")
        }
        guard let url = URL(string: settings.endpoint + path) else {
            throw .remote(reference: repo, detail: "HF_ENDPOINT '\(settings.endpoint)' does not make a valid URL")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        request.setValue("mergegraph; hf_hub-compatible", forHTTPHeaderField: "User-Agent")
        if let token = settings.token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let range { request.setValue(range, forHTTPHeaderField: "Range") }
        let result: HTTPTransfer.Result
        do {
            result = try HTTPTransfer.run(request, timeout: settings.timeout, sink: sink)
        } catch let error as CheckpointError {
            throw error
        } catch is EnoughBytes {
            return HTTPTransfer.Result(status: 206, headers: [:], body: Data())
        } catch let failure as SinkFailure {
            throw .remote(reference: repo, detail: "'\(repo)'\(file.map { " file \($0)" } ?? ""): \(failure.message)")
        } catch {
            throw unreachable(repo: repo, file: file, error: error, stalled: timeoutMessage)
        }
        guard (200..<300).contains(result.status) else {
            throw failure(result, repo: repo, revision: revision, file: file)
        }
        return result
    }

    /// The error of a transport failure: the Hub cannot be reached, or a transfer stopped.
    private func unreachable(repo: String, file: String?, error: Error, stalled: String?) -> CheckpointError {
        let detail = (error as NSError).userInfo[NSLocalizedDescriptionKey] as? String ?? "\(error)"
        if let file, let stalled {
            return .remote(reference: repo, detail: "'\(repo)' file \(file): \(stalled) (\(detail)); what was received "
                           + "is kept in the cache and the next run resumes from it")
        }
        return .remote(reference: repo, detail: "\(Self.unreachablePrefix) at \(settings.endpoint) for '\(repo)' "
                       + "(\(detail)): check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only models "
                       + "already in the cache \(settings.cacheDirectory)")
    }

    /// The error of an HTTP error status, from the Hub's `X-Error-Code` (huggingface_hub `hf_raise_for_status`).
    private func failure(_ result: HTTPTransfer.Result, repo: String, revision: String, file: String?) -> CheckpointError {
        let code = result.headers["x-error-code"]
        let endpoint = settings.endpoint
        let login = "set HF_TOKEN or log in with `hf auth login`"
        switch (code, result.status) {
        case ("RepoNotFound", _), (nil, 401):
            let access = settings.token == nil ? "no token was given (\(login))" : "the token has no access to it"
            return .noSuchModel(path: repo, remote: "repository '\(repo)' does not exist on \(endpoint), or it is "
                                + "private and \(access)")
        case ("GatedRepo", _):
            let what = settings.token == nil
                ? "\(login) with an account that accepted its conditions at \(endpoint)/\(repo)"
                : "accept its conditions at \(endpoint)/\(repo) with the account of your token, or wait for approval"
            return .remote(reference: repo, detail: "'\(repo)' is a gated repository on \(endpoint): \(what)")
        case ("RevisionNotFound", _):
            return .remote(reference: repo, detail: "revision '\(revision)' of '\(repo)' does not exist on \(endpoint): "
                           + "write a branch, a tag or a full commit hash after '@'")
        case ("EntryNotFound", _), (nil, 404) where file != nil:
            return .remote(reference: repo, detail: "'\(repo)' has no file \(file ?? "") at \(revision) on \(endpoint)")
        case (nil, 404):
            return .noSuchModel(path: repo, remote: "repository '\(repo)' does not exist on \(endpoint)")
        case (_, 403):
            return .remote(reference: repo, detail: "\(endpoint) refused access to '\(repo)' (HTTP 403): check that your "
                           + "token may read it")
        default:
            let message = String(data: result.body.prefix(200), encoding: .utf8) ?? ""
            return .remote(reference: repo, detail: "\(endpoint) answered HTTP \(result.status) for '\(repo)'"
                           + "\(file.map { " file \($0)" } ?? "")\(message.isEmpty ? "" : ": \(message)"); try again later")
        }
    }
}
