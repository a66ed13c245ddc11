import IR
import Parser

/// The scalar type a merge parameter takes.
public enum ParameterKind: Sendable {
    /// A finite number (YAML numbers, and strings that spell numbers, as pydantic accepts them).
    case float
    /// `true`/`false` (also 0/1 and their string spellings).
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

/// A parameter value after resolution, converted to its declared kind.
public enum ParameterScalar: Hashable, Sendable, CustomStringConvertible {
    /// A finite number (range-checked).
    case number(Double)
    /// A boolean.
    case bool(Bool)

    /// The value as the docs and `--dump-ir` write it (`1e-05`, `true`).
    public var description: String {
        switch self {
        case .number(let x): return formatAttribute(x)
        case .bool(let b): return b ? "true" : "false"
        }
    }
}

/// Whether a parameter must be set, has a default, or may stay unset.
public enum ParameterRequirement: Hashable, Sendable {
    /// Resolution fails with "missing required parameter" when no scope sets it.
    case required
    /// Resolution uses this value (with no config position) when no scope sets it.
    case defaultValue(ParameterScalar)
    /// Unset is allowed and means "not given" (e.g. passthrough's `scale`).
    case optional
}

/// The values a float parameter accepts besides being finite (NaN and ±inf are always rejected).
public struct ParameterRange: Hashable, Sendable, CustomStringConvertible {
    /// The smallest accepted value (nil: unbounded below).
    public var lower: Double?
    /// False when `lower` itself is rejected.
    public var lowerInclusive: Bool
    /// The largest accepted value (nil: unbounded above).
    public var upper: Double?
    /// False when `upper` itself is rejected.
    public var upperInclusive: Bool
    /// True when only whole numbers are accepted (e.g. an iteration count).
    public var integral: Bool

    /// A range; both bounds inclusive unless told otherwise.
    public init(lower: Double? = nil, lowerInclusive: Bool = true, upper: Double? = nil, upperInclusive: Bool = true,
                integral: Bool = false) {
        self.lower = lower
        self.lowerInclusive = lowerInclusive
        self.upper = upper
        self.upperInclusive = upperInclusive
        self.integral = integral
    }

    /// [0, 1]: fractions and interpolation factors.
    public static let unitInterval = ParameterRange(lower: 0, upper: 1)
    /// [0, ∞): magnitudes and tolerances.
    public static let nonNegative = ParameterRange(lower: 0)

    /// True when `x` (already known to be finite) is accepted.
    public func contains(_ x: Double) -> Bool {
        if let lower, lowerInclusive ? x < lower : x <= lower { return false }
        if let upper, upperInclusive ? x > upper : x >= upper { return false }
        return !integral || x == x.rounded()
    }

    /// The bounds in interval notation, as the generated docs print them: `[0, 1]`, `[0, ∞)` (whether only
    /// whole numbers are accepted is not part of it).
    public var description: String {
        let low = lower.map { (lowerInclusive ? "[" : "(") + formatAttribute($0) } ?? "(−∞"
        let high = upper.map { formatAttribute($0) + (upperInclusive ? "]" : ")") } ?? "∞)"
        return low + ", " + high
    }

    /// The range in words, for error messages: "between 0 and 1", "at least 0", "a whole number between 0 and 9".
    public var requirementText: String {
        let text: String
        switch (lower, upper) {
        case let (l?, u?) where lowerInclusive && upperInclusive:
            text = "between \(formatAttribute(l)) and \(formatAttribute(u))"
        case let (l?, nil):
            text = (lowerInclusive ? "at least " : "greater than ") + formatAttribute(l)
        case let (nil, u?):
            text = (upperInclusive ? "at most " : "less than ") + formatAttribute(u)
        case (nil, nil):
            text = "finite"
        default:
            text = "in " + description
        }
        return integral ? "a whole number " + text : text
    }
}

/// A parameter a merge method reads: name, kind, scope, requirement (default, required or optional) and range.
public struct ParameterSpec: Hashable, Sendable {
    /// The config key (`weight`, `t`, …).
    public var name: String
    /// Float or bool.
    public var kind: ParameterKind
    /// Shared, per input, or per non-base input.
    public var scope: ParameterScope
    /// Required, defaulted (mergekit's default) or optional.
    public var requirement: ParameterRequirement
    /// Accepted values of a float parameter besides finiteness (nil: any finite number; always nil for bools).
    public var range: ParameterRange?

    /// A declaration; `range` applies to float parameters only.
    public init(_ name: String, _ kind: ParameterKind, _ scope: ParameterScope, _ requirement: ParameterRequirement,
                range: ParameterRange? = nil) {
        self.name = name
        self.kind = kind
        self.scope = scope
        self.requirement = requirement
        self.range = range
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

/// What a merge method is and accepts: its mergekit name, docs, parameters and input counts. Each method's
/// declaration in `Sources/Planner/Methods` builds one; `mergegraph methods` and the README table print them.
public struct MethodSpec: Sendable {
    /// The `merge_method:` name, as in mergekit 0.1.5.
    public var name: String
    /// One line saying what the method computes (the README's "what it does").
    public var summary: String
    /// The paper or mergekit function the method follows.
    public var reference: String
    /// Every parameter the method reads, in resolution order.
    public var parameters: [ParameterSpec]
    /// Whether `base_model` is needed, optional, or an ordinary input.
    public var base: BasePolicy
    /// Bounds on the inputs, the base included (mergekit's model counts).
    public var minInputs: Int
    /// nil: no upper bound.
    public var maxInputs: Int?
    /// Bounds on the inputs other than the base (mergekit's `min_non_base` / `max_non_base`).
    public var minNonBase: Int?
    /// nil: no upper bound.
    public var maxNonBase: Int?

    /// A method's spec; input counts default to "at least one input".
    public init(name: String, summary: String, reference: String, parameters: [ParameterSpec], base: BasePolicy,
                minInputs: Int = 1, maxInputs: Int? = nil, minNonBase: Int? = nil, maxNonBase: Int? = nil) {
        self.name = name
        self.summary = summary
        self.reference = reference
        self.parameters = parameters
        self.base = base
        self.minInputs = minInputs
        self.maxInputs = maxInputs
        self.minNonBase = minNonBase
        self.maxNonBase = maxNonBase
    }

    /// The declared parameter called `name`, if any.
    public func parameter(named name: String) -> ParameterSpec? {
        parameters.first { $0.name == name }
    }
}
