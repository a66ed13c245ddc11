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
}
