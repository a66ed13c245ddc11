/// A mergekit config built by `legacy` and `bakllama` from their arguments, written as PyYAML's `yaml.dump` writes
/// it (block style, keys sorted, sequences under a key not indented, `{}` for an empty mapping), which is what
/// `mergekit-legacy --print-yaml` prints. The text is then parsed by `ConfigParser` like any config file.
indirect enum MergekitYAML: Equatable {
    case mapping([(key: String, value: MergekitYAML)])
    case sequence([MergekitYAML])
    case number(Double)
    case integer(Int)
    case bool(Bool)
    case string(String)

    static func == (a: MergekitYAML, b: MergekitYAML) -> Bool { a.text == b.text }

    /// The document, ending with a newline.
    var text: String { lines(indent: 0).joined(separator: "\n") + "\n" }

    private func lines(indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        switch self {
        case .mapping(let members):
            guard !members.isEmpty else { return [pad + "{}"] }
            return members.sorted { $0.key < $1.key }.flatMap { member -> [String] in
                let head = pad + Self.plainOrQuoted(member.key) + ":"
                switch member.value {
                case .mapping(let inner) where !inner.isEmpty:
                    return [head] + member.value.lines(indent: indent + 2)
                case .sequence(let items) where !items.isEmpty:
                    return [head] + member.value.lines(indent: indent)
                default:
                    return [head + " " + member.value.inline]
                }
            }
        case .sequence(let items):
            guard !items.isEmpty else { return [pad + "[]"] }
            return items.flatMap { item -> [String] in
                switch item {
                case .mapping(let inner) where !inner.isEmpty:
                    var inner = item.lines(indent: indent + 2)
                    inner[0] = pad + "- " + inner[0].dropFirst(indent + 2)
                    return inner
                case .sequence(let nested) where !nested.isEmpty:
                    var inner = item.lines(indent: indent + 2)
                    inner[0] = pad + "- " + inner[0].dropFirst(indent + 2)
                    return inner
                default:
                    return [pad + "- " + item.inline]
                }
            }
        default:
            return [pad + inline]
        }
    }

    /// A scalar or an empty collection on one line.
    private var inline: String {
        switch self {
        case .mapping: return "{}"
        case .sequence: return "[]"
        case .number(let x): return Self.pythonFloat(x)
        case .integer(let n): return String(n)
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return Self.plainOrQuoted(s)
        }
    }

    /// A float as PyYAML writes a Python float: `0.5`, `1.0`, `1.0e-05`.
    static func pythonFloat(_ x: Double) -> String {
        if x.isNaN { return ".nan" }
        if x.isInfinite { return x < 0 ? "-.inf" : ".inf" }
        let text = "\(x)"
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text }
        let mantissa = text[..<e], exponent = text[text.index(after: e)...]
        let sign = exponent.hasPrefix("-") || exponent.hasPrefix("+") ? "" : "+"
        let digits = exponent.drop { $0 == "+" || $0 == "-" }
        let paddedExponent = (exponent.hasPrefix("-") ? "-" : sign) + (digits.count < 2 ? "0" : "") + digits
        return (mantissa.contains(".") ? String(mantissa) : mantissa + ".0") + "e" + paddedExponent
    }

    /// A string plain when YAML would read it back as the same string, else single-quoted.
    static func plainOrQuoted(_ s: String) -> String {
        let safe = !s.isEmpty && s.unicodeScalars.allSatisfy { scalar in
            (scalar.value < 128 && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)))
                || "_./-+@".unicodeScalars.contains(scalar)
        }
        let special = ["true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"].contains(s.lowercased())
        let numeric = Double(s) != nil || s.first.map { "-+.0123456789@".contains($0) } == true
        if safe && !special && !numeric { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
