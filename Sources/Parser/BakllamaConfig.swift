import IR

/// A `bakllama.py` config (mergekit's first frankenmerge script): layer ranges stacked from several models, with
/// the embedding and the output head taken from chosen models.
///
/// ```yaml
/// layer_slices:
///   - model: models/a
///     start: 0
///     end: 4          # exclusive
///     scale: 0.5      # optional: multiplies this slice's mlp.down_proj weights
/// embedding_source: models/b   # default: the first slice's model
/// lm_head_source: models/c     # default: the last slice's model (final norm and lm_head)
/// ```
public struct BakllamaConfig: Hashable, Sendable {
    /// One `layer_slices` entry: layers `start..<end` of `model`.
    public struct LayerSlice: Hashable, Sendable {
        public var model: ModelReference
        public var start: Int
        public var end: Int
        public var scale: Located<Double>?
        public var location: SourceLocation

        public init(model: ModelReference, start: Int, end: Int, scale: Located<Double>?, location: SourceLocation) {
            self.model = model
            self.start = start
            self.end = end
            self.scale = scale
            self.location = location
        }
    }

    public var path: String
    public var layerSlices: [LayerSlice]
    /// As written (nil when absent); `embeddingModel` applies the default.
    public var embeddingSource: ModelReference?
    /// As written (nil when absent); `headModel` applies the default.
    public var lmHeadSource: ModelReference?
    /// "FILE:LINE:COL: warning: …" lines for keys bakllama ignores.
    public var warnings: [String]

    public init(path: String, layerSlices: [LayerSlice], embeddingSource: ModelReference?,
                lmHeadSource: ModelReference?, warnings: [String] = []) {
        self.path = path
        self.layerSlices = layerSlices
        self.embeddingSource = embeddingSource
        self.lmHeadSource = lmHeadSource
        self.warnings = warnings
    }

    /// Where the input embedding comes from: `embedding_source`, else the first slice's model (as bakllama.py).
    public var embeddingModel: ModelReference { embeddingSource ?? layerSlices[0].model }

    /// Where the final norm and `lm_head` come from: `lm_head_source`, else the last slice's model (as bakllama.py).
    public var headModel: ModelReference { lmHeadSource ?? layerSlices[layerSlices.count - 1].model }

    /// Reads and parses a bakllama config file.
    public static func parse(file path: String, strict: Bool = false) throws(ConfigError) -> BakllamaConfig {
        try parse(text: FileText.read(path), file: path, strict: strict)
    }

    /// Parses bakllama config text; `file` is used in locations. Unknown keys are warnings (pydantic ignores them),
    /// errors with `strict`.
    public static func parse(text: String, file: String, strict: Bool = false) throws(ConfigError) -> BakllamaConfig {
        let roots = try YAMLReader.documents(in: text, file: file)
        guard roots.count == 1, let root = roots.first else {
            throw .wrongType(roots.dropFirst().first?.location ?? SourceLocation(file: file, line: 1, column: 1),
                             expected: "one bakllama config (a mapping with 'layer_slices')",
                             found: roots.isEmpty ? "an empty file" : "\(roots.count) documents")
        }
        let diagnostics = ConfigDiagnostics(strict: strict)
        let fields = try Fields(root, expected: "a bakllama config (a mapping with 'layer_slices')",
                                allowed: ["layer_slices", "embedding_source", "lm_head_source"], diagnostics: diagnostics)
        let listNode = try fields.required("layer_slices")
        let items = try listNode.list("a list of layer slices")
        guard !items.isEmpty else { throw .invalidValue(listNode.location, "layer_slices must list at least one slice") }
        var slices: [LayerSlice] = []
        for item in items {
            let slice = try Fields(item, expected: "a layer slice (a mapping with 'model', 'start' and 'end')",
                                   allowed: ["model", "start", "end", "scale"], diagnostics: diagnostics)
            let start = try layerIndex(slice.required("start"), "start")
            let end = try layerIndex(slice.required("end"), "end")
            guard start <= end else {
                throw .invalidValue(item.location, "layer slice start \(start) is greater than its end \(end)")
            }
            slices.append(LayerSlice(model: try slice.required("model").modelReference(), start: start, end: end,
                                     scale: try slice.optional("scale")?.number("a number (the down_proj scale)"),
                                     location: item.location))
        }
        return BakllamaConfig(path: file, layerSlices: slices,
                              embeddingSource: try fields.optional("embedding_source")?.modelReference(),
                              lmHeadSource: try fields.optional("lm_head_source")?.modelReference(),
                              warnings: diagnostics.warnings)
    }

    private static func layerIndex(_ node: YAMLNode, _ key: String) throws(ConfigError) -> Int {
        let value = try node.number("a layer index (a non-negative integer)")
        guard value.value >= 0, value.value == value.value.rounded(), value.value < 1e9 else {
            throw .invalidValue(node.location, "\(key) must be a non-negative integer layer index, found \(formatAttribute(value.value))")
        }
        return Int(value.value)
    }
}
