/// Decodes `models:` and `slices:` lists and their entries.
enum InputsDecoder {
    /// `models:`: a list of `{model, parameters?}` mappings.
    static func models(_ node: YAMLNode, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> [InputModel] {
        var models: [InputModel] = []
        for item in try node.list("a list of model entries") {
            let fields = try Fields(item, expected: "a model entry (a mapping with 'model')",
                                    allowed: ["model", "parameters"], diagnostics: diagnostics)
            models.append(InputModel(model: try fields.required("model").modelReference(),
                                     parameters: try ParameterDecoder.map(fields.optional("parameters"), diagnostics),
                                     location: item.location))
        }
        return models
    }

    /// `slices:`: a list of `{sources, base_model?, residual_weight?, parameters?}` mappings.
    static func slices(_ node: YAMLNode, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> [OutputSlice] {
        var slices: [OutputSlice] = []
        for item in try node.list("a list of slice entries") {
            let fields = try Fields(item, expected: "a slice entry (a mapping with 'sources')",
                                    allowed: ["sources", "base_model", "residual_weight", "parameters"],
                                    diagnostics: diagnostics)
            let sourcesNode = try fields.required("sources")
            let sourceItems = try sourcesNode.list("a list of slice sources")
            guard !sourceItems.isEmpty else {
                throw .invalidValue(sourcesNode.location, "'sources' must list at least one source")
            }
            var sources: [InputSlice] = []
            for source in sourceItems { sources.append(try self.source(source, diagnostics)) }
            slices.append(OutputSlice(sources: sources,
                                      baseModel: try fields.optional("base_model")?.modelReference(),
                                      residualWeight: try fields.optional("residual_weight")?.number("a number"),
                                      parameters: try ParameterDecoder.map(fields.optional("parameters"), diagnostics),
                                      location: item.location))
        }
        return slices
    }

    /// One `{model, layer_range, parameters?}` source of a slice.
    private static func source(_ item: YAMLNode, _ diagnostics: ConfigDiagnostics) throws(ConfigError) -> InputSlice {
        let fields = try Fields(item, expected: "a slice source (a mapping with 'model' and 'layer_range')",
                                allowed: ["model", "layer_range", "parameters"], diagnostics: diagnostics)
        return InputSlice(model: try fields.required("model").modelReference(),
                          layerRange: try layerRange(fields.required("layer_range")),
                          parameters: try ParameterDecoder.map(fields.optional("parameters"), diagnostics),
                          location: item.location)
    }

    /// `[start, end]`: two non-negative integers with start <= end; every violation is located at the list.
    private static func layerRange(_ node: YAMLNode) throws(ConfigError) -> LayerRange {
        let items = try node.list("a layer range [start, end]")
        guard items.count == 2 else {
            throw .invalidValue(node.location, "layer_range must have exactly two entries [start, end], found \(items.count)")
        }
        var bounds: [Int] = []
        for item in items {
            guard case .number(let x)? = item.scalar.flatMap({ $0.isNull ? nil : $0.value }),
                  x >= 0, x == x.rounded(), x <= Double(Int32.max) else {
                throw .invalidValue(node.location, "layer_range entries must be non-negative integers")
            }
            bounds.append(Int(x))
        }
        guard bounds[0] <= bounds[1] else {
            throw .invalidValue(node.location, "layer_range start \(bounds[0]) is greater than its end \(bounds[1])")
        }
        return LayerRange(start: bounds[0], end: bounds[1], location: node.location)
    }
}
