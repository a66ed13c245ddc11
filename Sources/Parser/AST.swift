import IR

/// A position in a config file (1-based line and column).
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A value together with where it was written.
public struct Located<Value: Hashable & Sendable>: Hashable, Sendable {
    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

/// A scalar parameter value as written in YAML (plain numbers become `.number`, plain booleans `.bool`).
public enum ScalarValue: Hashable, Sendable, CustomStringConvertible {
    case number(Double)
    case bool(Bool)
    case string(String)

    public var description: String {
        switch self {
        case .number(let x): return formatAttribute(x)
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return "\"\(s)\""
        }
    }
}

/// A parameter setting: a scalar, a gradient (a list of scalars interpolated over layers), or filtered conditions.
public indirect enum ParameterValue: Hashable, Sendable {
    case scalar(ScalarValue)
    case gradient([ScalarValue])
    case conditional([ConditionalValue])
}

/// One `- filter: X` / `value: V` entry of a conditional parameter; a missing filter matches every tensor.
public struct ConditionalValue: Hashable, Sendable {
    public var filter: String?
    /// A `.scalar` or `.gradient`.
    public var value: ParameterValue
    public var location: SourceLocation

    public init(filter: String?, value: ParameterValue, location: SourceLocation) {
        self.filter = filter
        self.value = value
        self.location = location
    }
}

/// One `name: value` entry of a `parameters:` block.
public struct ParameterEntry: Hashable, Sendable {
    public var name: String
    public var value: ParameterValue
    /// Where the value starts: what errors about the value point at.
    public var location: SourceLocation
    /// Where the name (the key) is written: what warnings about the name point at (a misspelt or misplaced
    /// parameter).
    public var keyLocation: SourceLocation

    /// An entry whose value starts at `location` and whose key is written at `keyLocation` (`location` when not
    /// given).
    public init(name: String, value: ParameterValue, location: SourceLocation, keyLocation: SourceLocation? = nil) {
        self.name = name
        self.value = value
        self.location = location
        self.keyLocation = keyLocation ?? location
    }
}

/// A `parameters:` block in file order (empty when absent).
public struct ParameterMap: Hashable, Sendable {
    public var entries: [ParameterEntry]

    public init(_ entries: [ParameterEntry] = []) { self.entries = entries }

    public subscript(name: String) -> ParameterEntry? { entries.first { $0.name == name } }

    public var isEmpty: Bool { entries.isEmpty }
}

/// A reference to a model (a local directory path, a Hugging Face repo id, either with a LoRA adapter after `+`, or
/// the `name` of another stage), kept as written. Equality ignores the location.
public struct ModelReference: Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var location: SourceLocation

    public init(path: String, location: SourceLocation) {
        self.path = path
        self.location = location
    }

    public static func == (a: ModelReference, b: ModelReference) -> Bool { a.path == b.path }
    public func hash(into hasher: inout Hasher) { hasher.combine(path) }
    public var description: String { path }

    /// The model and the LoRA adapter the reference names, as mergekit 0.1.5's `ModelReference.validate_string`
    /// splits it: at `+` into a model and an adapter (`base+adapter`), each at `@` into a path and a revision
    /// (`org/name@main`). Nil when mergekit cannot parse it either: more than one `+`, more than one `@` in a part, or
    /// an empty path.
    public var parts: (model: ModelPath, adapter: ModelPath?)? {
        let chunks = path.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        guard chunks.count <= 2, let model = ModelPath(chunks[0]) else { return nil }
        if chunks.count == 1 { return (model, nil) }
        guard let adapter = ModelPath(chunks[1]) else { return nil }
        return (model, adapter)
    }
}

/// One part of a model reference: a local directory or a Hugging Face repo id, and the revision (branch, tag or
/// commit) after `@`, if any (mergekit `ModelPath`).
public struct ModelPath: Hashable, Sendable, CustomStringConvertible {
    /// The directory or repo id.
    public var path: String
    /// The revision written after `@`; nil when there is none.
    public var revision: String?

    public init(path: String, revision: String? = nil) {
        self.path = path
        self.revision = revision
    }

    /// Splits `text` at its `@`, as mergekit's `ModelPath.validate_string` does; nil for more than one `@` or an
    /// empty path or revision.
    public init?(_ text: String) {
        let pieces = text.split(separator: "@", omittingEmptySubsequences: false).map(String.init)
        guard pieces.count <= 2, !pieces[0].isEmpty else { return nil }
        if pieces.count == 2 && pieces[1].isEmpty { return nil }
        self.init(path: pieces[0], revision: pieces.count == 2 ? pieces[1] : nil)
    }

    /// `path@revision`, or `path`.
    public var description: String { revision.map { "\(path)@\($0)" } ?? path }
}

/// An entry of `models:`.
public struct InputModel: Hashable, Sendable {
    public var model: ModelReference
    public var parameters: ParameterMap
    public var location: SourceLocation

    public init(model: ModelReference, parameters: ParameterMap, location: SourceLocation) {
        self.model = model
        self.parameters = parameters
        self.location = location
    }
}

/// A `layer_range: [start, end]` (end exclusive).
public struct LayerRange: Hashable, Sendable {
    public var start: Int
    public var end: Int
    public var location: SourceLocation

    public init(start: Int, end: Int, location: SourceLocation) {
        self.start = start
        self.end = end
        self.location = location
    }

    public var count: Int { end - start }
}

/// An entry of a slice's `sources:`.
public struct InputSlice: Hashable, Sendable {
    public var model: ModelReference
    public var layerRange: LayerRange
    public var parameters: ParameterMap
    public var location: SourceLocation

    public init(model: ModelReference, layerRange: LayerRange, parameters: ParameterMap, location: SourceLocation) {
        self.model = model
        self.layerRange = layerRange
        self.parameters = parameters
        self.location = location
    }
}

/// An entry of `slices:`.
public struct OutputSlice: Hashable, Sendable {
    public var sources: [InputSlice]
    public var baseModel: ModelReference?
    /// mergekit's `OutputSliceDefinition.residual_weight`: kept so the planner can warn that it is ignored
    /// (mergekit 0.1.5's planner never reads it).
    public var residualWeight: Located<Double>?
    public var parameters: ParameterMap
    public var location: SourceLocation

    public init(sources: [InputSlice], baseModel: ModelReference?, residualWeight: Located<Double>?,
                parameters: ParameterMap, location: SourceLocation) {
        self.sources = sources
        self.baseModel = baseModel
        self.residualWeight = residualWeight
        self.parameters = parameters
        self.location = location
    }
}

/// What a config merges: whole models or layer slices.
public enum MergeInputs: Hashable, Sendable {
    case models([InputModel])
    case slices([OutputSlice])
}

/// One merge configuration (one YAML document).
public struct MergeConfig: Hashable, Sendable {
    /// The file the document came from.
    public var file: String
    /// `name:` of a stage in a multi-document config.
    public var name: Located<String>?
    public var inputs: MergeInputs
    /// Where `models:` / `slices:` was written.
    public var inputsLocation: SourceLocation
    public var mergeMethod: Located<String>
    public var baseModel: ModelReference?
    public var dtype: Located<DType>?
    public var outDtype: Located<DType>?
    public var parameters: ParameterMap
    /// `tokenizer_source` or the `tokenizer:` section; nil when neither is given.
    public var tokenizer: TokenizerSettings?
    /// `chat_template`: a template name (`auto`, `chatml`, …) or a literal Jinja template.
    public var chatTemplate: Located<String>?
    /// Keys mergekit knows that mergegraph does not implement yet (`modules`).
    public var unsupportedKeys: [Located<String>]
    /// Where the document starts.
    public var location: SourceLocation

    public init(file: String, name: Located<String>?, inputs: MergeInputs, inputsLocation: SourceLocation,
                mergeMethod: Located<String>, baseModel: ModelReference?, dtype: Located<DType>?,
                outDtype: Located<DType>?, parameters: ParameterMap, tokenizer: TokenizerSettings? = nil,
                chatTemplate: Located<String>? = nil, unsupportedKeys: [Located<String>], location: SourceLocation) {
        self.file = file
        self.name = name
        self.inputs = inputs
        self.inputsLocation = inputsLocation
        self.mergeMethod = mergeMethod
        self.baseModel = baseModel
        self.dtype = dtype
        self.outDtype = outDtype
        self.parameters = parameters
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.unsupportedKeys = unsupportedKeys
        self.location = location
    }
}

/// A parsed config file: one document, or several `---`-separated stages.
public struct ConfigFile: Hashable, Sendable {
    public var path: String
    public var documents: [MergeConfig]
    /// "FILE:LINE:COL: warning: …" lines: keys mergekit ignores, left out of `documents`.
    public var warnings: [String]
    /// The config text as given (the model card shows it).
    public var text: String
    /// Whether what mergekit ignores is an error (`--strict`): also the parameters a merge method does not use,
    /// which the planner finds.
    public var strict: Bool

    public init(path: String, documents: [MergeConfig], warnings: [String] = [], text: String = "", strict: Bool = false) {
        self.path = path
        self.documents = documents
        self.warnings = warnings
        self.text = text
        self.strict = strict
    }
}
