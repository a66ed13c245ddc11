/// A JSON document that keeps number lexemes and key order, so a rewritten `config.json` changes only what we set.
public indirect enum JSONValue: Hashable, Sendable {
    /// An object: members in the order written (duplicate keys kept; lookups take the first).
    case object([(key: String, value: JSONValue)])
    /// An array.
    case array([JSONValue])
    /// A string, escapes decoded.
    case string(String)
    /// A number exactly as written.
    case number(String)
    /// `true` or `false`.
    case bool(Bool)
    /// `null`.
    case null

    /// Equal when they serialize to the same text (so key order and number spelling matter).
    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.serialized() == b.serialized() }
    /// Hashes the serialized text, consistently with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(serialized()) }

    /// The value of `key` in an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// Sets (or appends) `key` in an object; no effect on other values.
    public mutating func set(_ key: String, _ value: JSONValue) {
        guard case .object(var members) = self else { return }
        if let i = members.firstIndex(where: { $0.key == key }) {
            members[i].value = value
        } else {
            members.append((key, value))
        }
        self = .object(members)
    }

    /// Keys of an object, in order.
    public var keys: [String] {
        guard case .object(let members) = self else { return [] }
        return members.map(\.key)
    }

    /// An integer value, if this is a number without a fraction.
    public var intValue: Int? {
        guard case .number(let s) = self else { return nil }
        return Int(s)
    }

    /// A string value.
    /// The value of a JSON `true` or `false`, else nil.
    public var boolValue: Bool? {
        guard case .bool(let b) = self else { return nil }
        return b
    }

    public var stringValue: String? {
        guard case .string(let s) = self else { return nil }
        return s
    }

    /// Pretty-printed with two-space indentation, as Hugging Face writes `config.json`.
    public func serialized(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1)
        let close = String(repeating: "  ", count: indent)
        switch self {
        case .object(let members):
            if members.isEmpty { return "{}" }
            let body = members.map { "\(pad)\(JSONValue.quote($0.key)): \($0.value.serialized(indent: indent + 1))" }
            return "{\n" + body.joined(separator: ",\n") + "\n\(close)}"
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { pad + $0.serialized(indent: indent + 1) }.joined(separator: ",\n") + "\n\(close)]"
        case .string(let s): return JSONValue.quote(s)
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    /// `s` as a quoted JSON string literal, escaped as Python's `json.dumps(ensure_ascii=False)` and serde_json
    /// escape it (`\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00XX`).
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
