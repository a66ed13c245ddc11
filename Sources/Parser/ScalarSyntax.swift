/// The YAML 1.1 plain-scalar classes mergegraph recognises: null, booleans and decimal numbers.
enum ScalarSyntax {
    static func isNull(_ text: String) -> Bool {
        ["", "~", "null", "Null", "NULL"].contains(text)
    }

    static func bool(_ text: String) -> Bool? {
        switch text {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: return nil
        }
    }

    /// `[+-]? (D+ ('.' D*)? | '.' D+) ([eE] [+-]? D+)?`, or `[+-]?.inf` / `.nan` in any YAML spelling.
    static func number(_ text: String) -> Double? {
        var rest = Substring(text)
        var sign = 1.0
        if let first = rest.first, first == "+" || first == "-" {
            if first == "-" { sign = -1 }
            rest = rest.dropFirst()
        }
        if [".inf", ".Inf", ".INF"].contains(rest) { return sign * .infinity }
        if [".nan", ".NaN", ".NAN"].contains(rest), rest.count == text.count { return .nan }
        guard isDecimal(rest) else { return nil }
        return Double(text)
    }

    /// Whether `text` is digits with an optional fraction and exponent, with at least one mantissa digit.
    private static func isDecimal(_ text: Substring) -> Bool {
        var rest = text
        let whole = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(whole.count)
        var fraction = Substring("")
        if rest.first == "." {
            rest = rest.dropFirst()
            fraction = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(fraction.count)
        }
        guard !whole.isEmpty || !fraction.isEmpty else { return false }
        if let e = rest.first, e == "e" || e == "E" {
            rest = rest.dropFirst()
            if let s = rest.first, s == "+" || s == "-" { rest = rest.dropFirst() }
            let exponent = rest.prefix { $0.isASCII && $0.isNumber }
            guard !exponent.isEmpty else { return false }
            rest = rest.dropFirst(exponent.count)
        }
        return rest.isEmpty
    }
}
