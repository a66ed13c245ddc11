import Foundation

/// Writes messages for people to standard error.
enum Console {
    /// Writes `message` and a newline.
    static func error(_ message: String) {
        write(message + "\n")
    }

    /// Writes `text` as it is. A standard error nobody reads any more (a closed pipe) loses it: the write's error is
    /// dropped, since `FileHandle.write(_:)` would trap on it.
    static func write(_ text: String) {
        try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
    }
}
