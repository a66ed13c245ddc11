/// Findings the parser reports without stopping: keys mergekit's schema ignores (its pydantic models ignore
/// unknown keys, so `layer_range` under `models:` or an anchor holder like `defaults:` used with `<<:` run there).
/// With `strict`, such a key is an error instead (`--strict`).
public final class ConfigDiagnostics {
    /// Whether an ignored key is an error (`ConfigError.unknownKey`) rather than a warning.
    public let strict: Bool
    /// "FILE:LINE:COL: warning: …" lines, in file order.
    public private(set) var warnings: [String] = []

    public init(strict: Bool = false) {
        self.strict = strict
    }

    /// Reports `key` at `location`, not one of `allowed` there: a warning that mergekit ignores it, with the closest
    /// allowed key when one is near; in strict mode the `unknownKey` error.
    /// - Throws: `ConfigError.unknownKey` in strict mode.
    func ignoredKey(_ key: String, at location: SourceLocation, allowed: [String], place: String) throws(ConfigError) {
        if strict { throw .unknownKey(location, key: key, allowed: allowed) }
        let guess = KeySuggestion.closest(to: key, among: allowed).map { " (did you mean '\($0)'?)" } ?? ""
        warnings.append("\(location): warning: unknown key '\(key)' in \(place)\(guess); mergekit ignores it, "
                        + "and so does mergegraph (--strict makes this an error)")
    }

    /// Reports `key` written again at `location` in a mapping that has it at `first`: PyYAML, which mergekit reads
    /// configs with, keeps the last value, and so does mergegraph, with a warning; in strict mode the
    /// `duplicateKey` error.
    /// - Throws: `ConfigError.duplicateKey` in strict mode.
    func duplicateKey(_ key: String, at location: SourceLocation, first: SourceLocation) throws(ConfigError) {
        if strict { throw .duplicateKey(location, key: key, first: first) }
        warnings.append("\(location): warning: duplicate key '\(key)' (first written at line \(first.line), column "
                        + "\(first.column)); mergekit (PyYAML) keeps the last value, and so does mergegraph "
                        + "(--strict makes this an error)")
    }

    /// Reports a `dtype` / `out_dtype` written as one of mergegraph's short aliases (`bf16`, `fp16`, `half`, …) at
    /// `location`: mergekit 0.1.5's `dtype_from_name` knows only `bfloat16`, `float16`, `float32`, `float64` (and
    /// `int64`), so the same config fails there ("Unimplemented dtype"); a warning naming the spelling both accept,
    /// in strict mode the `invalidValue` error.
    /// - Throws: `ConfigError.invalidValue` in strict mode.
    func dtypeAlias(_ name: String, canonical: String, at location: SourceLocation) throws(ConfigError) {
        let text = "dtype '\(name)' is mergegraph's alias for '\(canonical)'; mergekit 0.1.5 rejects it "
            + "(Unimplemented dtype), so write '\(canonical)' for a config both run"
        if strict { throw .invalidValue(location, text) }
        warnings.append("\(location): warning: \(text) (--strict makes this an error)")
    }
}
