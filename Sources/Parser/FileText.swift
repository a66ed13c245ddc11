#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a config file as UTF-8 text.
enum FileText {
    /// The content of the config file at `path`.
    /// - Throws: `ConfigError.io` naming `path` when it cannot be read or is not valid UTF-8.
    static func read(_ path: String) throws(ConfigError) -> String {
        guard let handle = fopen(path, "rb") else { throw .io(path: path, message: String(cString: strerror(errno))) }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = fread(&chunk, 1, chunk.count, handle)
            bytes += chunk.prefix(count)
            guard count == chunk.count else { break }
        }
        if ferror(handle) != 0 { throw .io(path: path, message: String(cString: strerror(errno))) }
        return try text(bytes, path: path)
    }

    /// The content of config file `path` as text.
    /// - Throws: `ConfigError.io` naming `path` when `bytes` are not valid UTF-8.
    static func text(_ bytes: [UInt8], path: String) throws(ConfigError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .io(path: path, message: "not valid UTF-8 text")
        }
        return text
    }
}
