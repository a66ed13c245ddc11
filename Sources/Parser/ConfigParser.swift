/// Parses mergekit YAML configs into the typed AST.
public enum ConfigParser {
    /// Reads and parses a config file (single or multi-document `---`).
    /// - Parameter strict: report keys mergekit ignores as errors rather than warnings (`--strict`).
    public static func parse(file path: String, strict: Bool = false) throws(ConfigError) -> ConfigFile {
        try parse(text: FileText.read(path), file: path, strict: strict)
    }

    /// Parses config text; `file` is used in locations and messages. Empty documents are skipped.
    /// Keys mergekit ignores become `ConfigFile.warnings` (errors with `strict`).
    public static func parse(text: String, file: String, strict: Bool = false) throws(ConfigError) -> ConfigFile {
        let diagnostics = ConfigDiagnostics(strict: strict)
        let roots = try YAMLReader.documents(in: text, file: file, diagnostics: diagnostics).filter { root in
            guard let scalar = root.scalar else { return true }
            return !(scalar.isPlain && scalar.text.isEmpty)
        }
        guard !roots.isEmpty else {
            throw .wrongType(SourceLocation(file: file, line: 1, column: 1),
                             expected: "a mapping of config keys", found: "an empty file")
        }
        var documents: [MergeConfig] = []
        for root in roots { documents.append(try DocumentDecoder.decode(root, file: file, diagnostics: diagnostics)) }
        return ConfigFile(path: file, documents: documents, warnings: diagnostics.warnings, text: text, strict: strict)
    }
}
