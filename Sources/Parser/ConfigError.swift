/// Every error the config parser reports; `description` reads "FILE:LINE:COL: message" ("FILE: message" for I/O).
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read.
    case io(path: String, message: String)
    /// libyaml rejected the text, or an alias names no anchor.
    case syntax(SourceLocation, String)
    /// A mapping key the schema does not define at this place.
    case unknownKey(SourceLocation, key: String, allowed: [String])
    /// A key written twice in one mapping (located at the second one).
    case duplicateKey(SourceLocation, key: String, first: SourceLocation)
    /// A node of the wrong shape or scalar class, e.g. a string where a list is needed.
    case wrongType(SourceLocation, expected: String, found: String)
    /// A required key is absent (located at the mapping that lacks it).
    case missingKey(SourceLocation, key: String)
    /// Not exactly one of mutually exclusive keys is given.
    case exclusiveKeys(SourceLocation, keys: [String])
    /// A well-typed value that is out of range or otherwise unacceptable.
    case invalidValue(SourceLocation, String)

    /// Where the error is, or nil for I/O errors.
    public var location: SourceLocation? {
        switch self {
        case .io: return nil
        case .syntax(let at, _), .unknownKey(let at, _, _), .duplicateKey(let at, _, _),
             .wrongType(let at, _, _), .missingKey(let at, _), .exclusiveKeys(let at, _),
             .invalidValue(let at, _):
            return at
        }
    }

    /// The message without the location prefix.
    public var message: String {
        switch self {
        case .io(_, let message):
            return message
        case .syntax(_, let message), .invalidValue(_, let message):
            return message
        case .unknownKey(_, let key, let allowed):
            if let guess = KeySuggestion.closest(to: key, among: allowed) {
                return "unknown key '\(key)' (did you mean '\(guess)'?)"
            }
            return "unknown key '\(key)' (expected one of \(Self.quotedList(allowed, conjunction: "or")))"
        case .duplicateKey(_, let key, let first):
            return "duplicate key '\(key)' (first written at line \(first.line), column \(first.column))"
        case .wrongType(_, let expected, let found):
            return "expected \(expected), found \(found)"
        case .missingKey(_, let key):
            return "missing required key '\(key)'"
        case .exclusiveKeys(_, let keys):
            return "exactly one of \(Self.quotedList(keys, conjunction: "or")) must be present"
        }
    }

    public var description: String {
        if case .io(let path, let message) = self { return "\(path): \(message)" }
        return "\(location.map(String.init(describing:)) ?? ""): \(message)"
    }

    /// `'a', 'b' or 'c'`.
    static func quotedList(_ items: [String], conjunction: String) -> String {
        let quoted = items.map { "'\($0)'" }
        guard let last = quoted.last, quoted.count > 1 else { return quoted.joined() }
        return quoted.dropLast().joined(separator: ", ") + " \(conjunction) " + last
    }
}
