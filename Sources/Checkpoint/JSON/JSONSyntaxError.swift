/// A malformed JSON text, with the byte offset where reading stopped.
public struct JSONSyntaxError: Error, CustomStringConvertible {
    /// Bytes from the start of the text to where reading stopped.
    public var offset: Int
    /// What was expected or wrong there.
    public var message: String
    /// "invalid JSON at byte N: message".
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}
