/// Decodes one YAML document into a `MergeConfig`.
enum DocumentDecoder {
    static let keys = ["merge_method", "name", "models", "slices", "modules", "base_model", "dtype", "out_dtype",
                       "parameters", "tokenizer_source", "tokenizer", "chat_template"]
    /// Keys mergekit knows that mergegraph records but does not implement.
    static let unsupported: Set<String> = ["modules"]
    /// The mutually exclusive input keys, in the order an error message names them.
    static let inputKeys = ["models", "slices", "modules"]

    static func decode(_ root: YAMLNode, file: String, diagnostics: ConfigDiagnostics) throws(ConfigError) -> MergeConfig {
        let fields = try Fields(root, expected: "a mapping of config keys", allowed: keys, diagnostics: diagnostics)
        let mergeMethod = try fields.required("merge_method").string("a merge method name")
        let (inputs, inputsLocation) = try self.inputs(fields, diagnostics)
        let unsupportedKeys: [Located<String>] = fields.pairs.compactMap { pair in
            guard let key = pair.key.scalar?.text, unsupported.contains(key) else { return nil }
            return Located(key, at: pair.key.location)
        }
        return MergeConfig(file: file,
                           name: try fields.optional("name")?.string("a stage name"),
                           inputs: inputs,
                           inputsLocation: inputsLocation,
                           mergeMethod: mergeMethod,
                           baseModel: try fields.optional("base_model")?.modelReference(),
                           dtype: try fields.optional("dtype")?.dtype(diagnostics),
                           outDtype: try fields.optional("out_dtype")?.dtype(diagnostics),
                           parameters: try ParameterDecoder.map(fields.optional("parameters"), diagnostics),
                           tokenizer: try TokenizerDecoder.settings(fields, diagnostics),
                           chatTemplate: try TokenizerDecoder.chatTemplate(fields),
                           unsupportedKeys: unsupportedKeys,
                           location: root.location)
    }

    /// Exactly one non-empty `models`, `slices` or `modules`; `modules` alone gives `.models([])`.
    private static func inputs(_ fields: Fields, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> (MergeInputs, SourceLocation) {
        let written = fields.pairs.filter { inputKeys.contains($0.key.scalar?.text ?? "") }
        let given = written.filter { !isEmpty($0.value) }
        guard given.count == 1, let pair = given.first else {
            let at = given.count > 1 ? given[1].key.location : (written.first?.key.location ?? fields.mapping.location)
            throw .exclusiveKeys(at, keys: ["models", "slices"])
        }
        switch pair.key.scalar?.text {
        case "models": return (.models(try InputsDecoder.models(pair.value, diagnostics)), pair.key.location)
        case "slices": return (.slices(try InputsDecoder.slices(pair.value, diagnostics)), pair.key.location)
        default: return (.models([]), pair.key.location)
        }
    }

    /// Null, `[]` and `{}` count as not given, as in mergekit.
    private static func isEmpty(_ node: YAMLNode) -> Bool {
        switch node.kind {
        case .scalar(let s): return s.isNull
        case .sequence(let items): return items.isEmpty
        case .mapping(let pairs): return pairs.isEmpty
        }
    }
}
