import Parser

/// The scalar type a merge parameter takes.
public enum ParameterKind: Sendable {
    case float
    case bool
}

/// Which inputs a parameter is given for (mergekit's `ParameterScope`).
public enum ParameterScope: Sendable {
    /// One value for the whole tensor (read from slice and global parameters).
    case shared
    /// One value per input model, the base included.
    case input
    /// One value per input model other than the base.
    case nonBase
}

/// A parameter a merge method reads: name, type, scope, and default (nil: required, unless `optional`).
public struct ParameterSpec: Sendable {
    public var name: String
    public var kind: ParameterKind
    public var scope: ParameterScope
    public var defaultValue: ScalarValue?
    /// True when a missing value is allowed and means "not set" (e.g. passthrough `scale`).
    public var optional: Bool

    public init(_ name: String, _ kind: ParameterKind, _ scope: ParameterScope,
                default defaultValue: ScalarValue? = nil, optional: Bool = false) {
        self.name = name
        self.kind = kind
        self.scope = scope
        self.defaultValue = defaultValue
        self.optional = optional
    }
}

/// How a method treats `base_model` (mergekit's `BasePolicy`).
public enum BasePolicy: Sendable {
    /// The base model, if any, is an ordinary input.
    case ignored
    /// The method needs a base model among its inputs.
    case required
    /// The method uses a base model when one is given and also works without one.
    case optional
}

/// What a merge method accepts: its parameters and input counts.
public struct MethodSpec: Sendable {
    public var name: String
    public var summary: String
    public var parameters: [ParameterSpec]
    public var base: BasePolicy
    public var minInputs: Int
    public var maxInputs: Int?
    /// Bounds on the inputs other than the base (mergekit's `min_non_base` / `max_non_base`).
    public var minNonBase: Int?
    public var maxNonBase: Int?

    public init(name: String, summary: String, parameters: [ParameterSpec], base: BasePolicy,
                minInputs: Int = 1, maxInputs: Int? = nil, minNonBase: Int? = nil, maxNonBase: Int? = nil) {
        self.name = name
        self.summary = summary
        self.parameters = parameters
        self.base = base
        self.minInputs = minInputs
        self.maxInputs = maxInputs
        self.minNonBase = minNonBase
        self.maxNonBase = maxNonBase
    }
}
