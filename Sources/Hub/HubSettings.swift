import Foundation

/// Where the Hugging Face Hub is and how to use it, read from the environment as huggingface_hub reads it
/// (`huggingface_hub.constants`): the endpoint (`HF_ENDPOINT`), the token (`HF_TOKEN`, else the token file
/// `HF_TOKEN_PATH` or `$HF_HOME/token`), the cache (`HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else
/// `$HF_HOME/hub`, `$HF_HOME` defaulting to `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`), offline mode
/// (`HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` set to 1, ON, YES or TRUE).
public struct HubSettings: Sendable {
    /// The Hub's base URL, without a trailing slash.
    public var endpoint: String
    /// The token sent as `Authorization: Bearer`, if any.
    public var token: String?
    /// The cache directory holding `models--ORG--NAME` folders.
    public var cacheDirectory: String
    /// Never use the network: resolve from the cache only.
    public var offline: Bool
    /// Seconds to wait for the Hub's answer to a metadata request or a download's next bytes
    /// (`HF_HUB_ETAG_TIMEOUT`, `HF_HUB_DOWNLOAD_TIMEOUT`; huggingface_hub's default 10).
    public var timeout: TimeInterval
    /// Files downloaded at once.
    public var parallelDownloads: Int

    public init(endpoint: String = "https://huggingface.co", token: String? = nil, cacheDirectory: String,
                offline: Bool = false, timeout: TimeInterval = 10, parallelDownloads: Int = 4) {
        self.endpoint = endpoint
        self.token = token
        self.cacheDirectory = cacheDirectory
        self.offline = offline
        self.timeout = timeout
        self.parallelDownloads = parallelDownloads
    }

    /// The settings `environment` gives, with `cacheDirectory` (mergekit's `--transformers-cache`, huggingface_hub's
    /// `cache_dir`) in place of the environment's cache when given.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                       cacheDirectory: String? = nil) -> HubSettings {
        func value(_ name: String) -> String? {
            guard let v = environment[name], !v.isEmpty else { return nil }
            return v
        }
        let home = value("HOME") ?? NSHomeDirectory()
        func expand(_ path: String) -> String {
            var path = path
            if path == "~" || path.hasPrefix("~/") { path = home + path.dropFirst() }
            for (name, v) in environment where path.contains("$") {
                path = path.replacingOccurrences(of: "${\(name)}", with: v).replacingOccurrences(of: "$\(name)", with: v)
            }
            return path
        }
        let hfHome = expand(value("HF_HOME") ?? ((value("XDG_CACHE_HOME") ?? home + "/.cache") + "/huggingface"))
        let cache = cacheDirectory.map(expand)
            ?? expand(value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") ?? hfHome + "/hub")
        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil, let text = try? String(contentsOfFile: expand(value("HF_TOKEN_PATH") ?? hfHome + "/token"),
                                                encoding: .utf8) {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            token = trimmed.isEmpty ? nil : trimmed
        }
        var endpoint = value("HF_ENDPOINT") ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        func truthy(_ name: String) -> Bool {
            ["1", "ON", "YES", "TRUE"].contains(value(name)?.uppercased() ?? "")
        }
        let timeout = [value("HF_HUB_ETAG_TIMEOUT"), value("HF_HUB_DOWNLOAD_TIMEOUT")].compactMap { $0.flatMap(Double.init) }.max()
        return HubSettings(endpoint: endpoint, token: token, cacheDirectory: cache,
                           offline: truthy("HF_HUB_OFFLINE") || truthy("TRANSFORMERS_OFFLINE"), timeout: timeout ?? 10)
    }

    /// Whether `reference` is a valid model repo id, as huggingface_hub's `validate_repo_id` accepts it: `NAME` or
    /// `ORG/NAME`, each part letters, digits, `-`, `_` and `.`, starting and ending with a letter, digit or `_`,
    /// without `--` or `..`, the name at most 96 characters.
    public static func isRepoID(_ reference: String) -> Bool {
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !reference.contains("--"), !reference.contains("..") else { return false }
        func word(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "_") }
        for part in parts {
            guard let first = part.first, let last = part.last, word(first), word(last),
                  part.allSatisfy({ word($0) || $0 == "-" || $0 == "." }) else { return false }
        }
        return parts[parts.count - 1].count <= 96 && !reference.hasSuffix(".git")
    }

    /// Whether `revision` is a full commit hash (40 lowercase hex digits), which never changes.
    public static func isCommitHash(_ revision: String) -> Bool {
        revision.count == 40 && revision.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}
