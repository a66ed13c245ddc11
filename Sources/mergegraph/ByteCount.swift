import Foundation

/// Size arguments as mergekit spells them.
enum ByteCount {
    /// Why a size argument was refused.
    enum Problem: Error, Equatable {
        /// Not a number with one of the accepted units.
        case malformed
        /// A valid size beyond what a byte count holds (`Int.max`).
        case tooLarge
    }

    /// mergekit's `parse_kmb`: a plain integer, or one followed by K, M or B (thousand, million, billion).
    static func parseKMB(_ text: String) -> Int? { try? kmb(text) }

    /// `parseKMB`, telling a malformed size from one too large to count (checked arithmetic: never traps).
    static func kmb(_ text: String) throws(Problem) -> Int {
        let s = text.trimmingCharacters(in: .whitespaces)
        guard let last = s.last else { throw .malformed }
        let digits: Substring, scale: Int
        switch last.lowercased() {
        case "k": (digits, scale) = (s.dropLast(), 1000)
        case "m": (digits, scale) = (s.dropLast(), 1_000_000)
        case "b": (digits, scale) = (s.dropLast(), 1_000_000_000)
        default: (digits, scale) = (Substring(s), 1)
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw .malformed }
        guard let n = Int(digits) else { throw .tooLarge }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow else { throw .tooLarge }
        return bytes
    }

    /// A memory size: a whole number of bytes, or a number (fractions allowed) with a unit: KiB, MiB, GiB, TiB or K, M, G, T
    /// (powers of 1024), KB, MB, GB, TB (powers of 1000); case does not matter, a trailing B is optional.
    static func parseMemory(_ text: String) -> Int? { try? memory(text) }

    /// `parseMemory`, telling a malformed size from one too large to count.
    static func memory(_ text: String) throws(Problem) -> Int {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = s.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(digits), value >= 0, !digits.isEmpty else { throw .malformed }
        let units: [String: Double] = [
            "": 1, "b": 1,
            "k": 0x1p10, "kib": 0x1p10, "kb": 1e3,
            "m": 0x1p20, "mib": 0x1p20, "mb": 1e6,
            "g": 0x1p30, "gib": 0x1p30, "gb": 1e9,
            "t": 0x1p40, "tib": 0x1p40, "tb": 1e12,
        ]
        guard let unit = units[String(s.dropFirst(digits.count)).trimmingCharacters(in: .whitespaces)] else { throw .malformed }
        // A fraction of a byte (`1.5`, `0.5B`) is no size: `1.5` was taken as 1 byte.
        if unit == 1, value.rounded(.down) != value { throw .malformed }
        let bytes = (value * unit).rounded(.down)
        guard bytes < 9e18 else { throw .tooLarge }
        return Int(bytes)
    }

    /// The message for a refused size argument.
    static func message(option: String, text: String, problem: Problem, example: String) -> String {
        switch problem {
        case .malformed: return "\(option): '\(text)' is not a size like \(example)"
        case .tooLarge: return "\(option): '\(text)' is too large (at most \(Int.max) bytes)"
        }
    }
}
