/// Docs generated from the method declarations: `mergegraph methods` prints `MethodRegistry.listing()`,
/// `mergegraph methods --markdown` prints `MethodRegistry.markdownTable()`, which is the README's
/// "Merge methods" table (a test keeps them equal).
extension MethodRegistry {
    /// One line per method: "NAME: PARAMETERS; BASE AND INPUTS", e.g.
    /// `slerp: t (required, in [0, 1]); needs base_model; exactly 2 models (base included)`.
    public static func listing() -> String {
        specs.map { spec in
            let parameters = spec.parameters.isEmpty ? "no parameters"
                : spec.parameters.map { $0.documentation(code: false) }.joined(separator: ", ")
            return "\(spec.name): \(parameters); \(spec.inputDocumentation(code: false))\n"
        }.joined()
    }

    /// The README's method table in Markdown: method, parameters (scope, default or requirement, range),
    /// base model and input counts, what it does, and the paper or mergekit function it follows.
    public static func markdownTable() -> String {
        var lines = ["| method | parameters | inputs | what it does | follows |", "|---|---|---|---|---|"]
        for spec in specs {
            let parameters = spec.parameters.isEmpty ? "none"
                : spec.parameters.map { $0.documentation(code: true) }.joined(separator: ", ")
            let cells = ["`\(spec.name)`", parameters, spec.inputDocumentation(code: true), spec.summary, spec.reference]
            lines.append("| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |")
        }
        return lines.map { $0 + "\n" }.joined()
    }
}

extension ParameterSpec {
    /// `weight (per model, required)`, `density (per model but the base, default 1, in [0, 1])`,
    /// `normalize (default true)`; the name in backticks when `code`.
    public func documentation(code: Bool) -> String {
        var notes: [String] = []
        switch scope {
        case .shared: break
        case .input: notes.append("per model")
        case .nonBase: notes.append("per model but the base")
        }
        switch requirement {
        case .required: notes.append("required")
        case .optional: notes.append("optional")
        case .defaultValue(let value): notes.append("default \(value)")
        }
        if let range { notes.append((range.integral ? "a whole number in " : "in ") + range.description) }
        let label = code ? "`\(name)`" : name
        return "\(label) (\(notes.joined(separator: ", ")))"
    }
}

extension MethodSpec {
    /// The base policy and input counts: "needs base_model; exactly 2 models (base included)".
    public func inputDocumentation(code: Bool) -> String {
        let baseModel = code ? "`base_model`" : "base_model"
        var parts: [String]
        switch base {
        case .required: parts = ["needs \(baseModel)"]
        case .optional: parts = ["optional \(baseModel)"]
        case .ignored: parts = ["\(baseModel) is an ordinary input"]
        }
        if minInputs > 1 || maxInputs != nil {
            parts.append(Stage.expectedCount(minInputs, maxInputs) + ((maxInputs ?? minInputs) == 1 ? " model" : " models")
                         + " (base included)")
        }
        if minNonBase != nil || maxNonBase != nil {
            parts.append(Stage.expectedCount(minNonBase ?? 0, maxNonBase) + ((maxNonBase ?? minNonBase) == 1 ? " model" : " models")
                         + " besides the base")
        }
        return parts.joined(separator: "; ")
    }
}
