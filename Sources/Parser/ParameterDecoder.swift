/// Decodes `parameters:` blocks: scalars, gradients and filtered conditions.
enum ParameterDecoder {
    /// A parameter block; absent or null gives an empty map, and null-valued entries are skipped.
    static func map(_ node: YAMLNode?, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> ParameterMap {
        guard let node, !node.isNull else { return ParameterMap() }
        guard case .mapping(let pairs) = node.kind else {
            throw .wrongType(node.location, expected: "a mapping of parameter names to values", found: node.kindDescription)
        }
        var entries: [ParameterEntry] = []
        for pair in pairs {
            let name = try pair.key.key()
            guard !pair.value.isNull else { continue }
            entries.append(ParameterEntry(name: name, value: try setting(pair.value, diagnostics), location: pair.value.location,
                                          keyLocation: pair.key.location))
        }
        return ParameterMap(entries)
    }

    /// One non-null setting: a scalar, a gradient list, a conditional mapping, or a list of conditional mappings.
    static func setting(_ node: YAMLNode, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> ParameterValue {
        switch node.kind {
        case .scalar:
            return .scalar(try node.scalarValue())
        case .mapping:
            return .conditional([try condition(node, diagnostics)])
        case .sequence(let items):
            guard let first = items.first, case .mapping = first.kind else { return .gradient(try gradient(node)) }
            var conditions: [ConditionalValue] = []
            for item in items {
                guard case .mapping = item.kind else {
                    throw .wrongType(item.location, expected: "a conditional entry (a mapping with 'value')",
                                     found: item.kindDescription)
                }
                conditions.append(try condition(item, diagnostics))
            }
            return .conditional(conditions)
        }
    }

    /// A non-empty list of scalars.
    private static func gradient(_ node: YAMLNode) throws(ConfigError) -> [ScalarValue] {
        let items = try node.list("a scalar or a list of scalars")
        guard !items.isEmpty else { throw .invalidValue(node.location, "a gradient must list at least one value") }
        var values: [ScalarValue] = []
        for item in items { values.append(try item.scalarValue()) }
        return values
    }

    /// A `{filter: F, value: V}` mapping; `filter` is optional, `value` a scalar or a gradient.
    private static func condition(_ node: YAMLNode, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> ConditionalValue {
        let fields = try Fields(node, expected: "a conditional entry (a mapping with 'value')", allowed: ["filter", "value"],
                                diagnostics: diagnostics)
        let valueNode = try fields.required("value")
        let value: ParameterValue
        if let scalar = valueNode.scalar, !scalar.isNull {
            value = .scalar(scalar.value)
        } else if case .sequence = valueNode.kind {
            value = .gradient(try gradient(valueNode))
        } else {
            throw .wrongType(valueNode.location, expected: "a scalar or a list of scalars", found: valueNode.kindDescription)
        }
        let filter = try fields.optional("filter")?.string("a tensor-name filter").value
        return ConditionalValue(filter: filter, value: value, location: node.location)
    }
}
