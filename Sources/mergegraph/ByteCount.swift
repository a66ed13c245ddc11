import Foundation

/// Size arguments as mergekit spells them.
enum ByteCount {
    /// mergekit's `parse_kmb`: a plain integer, or one followed by K, M or B (thousand, million, billion).
    static func parseKMB(_ text: String) -> Int? {
        let s = text.trimmingCharacters(in: .whitespaces)
        if let n = Int(s), n >= 0 { return n }
        guard let last = s.last?.lowercased(), let n = Int(s.dropLast()), n >= 0 else { return nil }
        switch last {
        case "k": return n * 1000
        case "m": return n * 1_000_000
        case "b": return n * 1_000_000_000
        default: return nil
        }
    }

    /// A memory size: plain bytes, or a number (fractions allowed) with a unit: KiB, MiB, GiB, TiB or K, M, G, T
    /// (powers of 1024), KB, MB, GB, TB (powers of 1000); case does not matter, a trailing B is optional.
    static func parseMemory(_ text: String) -> Int? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = s.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(digits), value >= 0, !digits.isEmpty else { return nil }
        let units: [String: Double] = [
            "": 1, "b": 1,
            "k": 0x1p10, "kib": 0x1p10, "kb": 1e3,
            "m": 0x1p20, "mib": 0x1p20, "mb": 1e6,
            "g": 0x1p30, "gib": 0x1p30, "gb": 1e9,
            "t": 0x1p40, "tib": 0x1p40, "tb": 1e12,
        ]
        guard let unit = units[String(s.dropFirst(digits.count)).trimmingCharacters(in: .whitespaces)] else { return nil }
        let bytes = (value * unit).rounded(.down)
        return bytes < 9e18 ? Int(bytes) : nil
    }
}
