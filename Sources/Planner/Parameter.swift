import Parser

/// A Swift type a merge parameter is read as: `Double` and `Bool` for parameters that always have a value
/// (required, or with a default), `Double?` for optional ones.
public protocol ParameterType: Sendable {
    /// The kind resolution converts config values to.
    static var kind: ParameterKind { get }
    /// The typed value of a resolved parameter (nil: unresolved or of another kind; `Double?` gives `.some(nil)`
    /// for an unresolved optional parameter).
    static func typed(_ resolved: ParameterScalar?) -> Self?
    /// What a read of a parameter the method does not declare returns; the lowering is then rejected with an
    /// internal error, so this value never reaches a graph.
    static var undeclaredRead: Self { get }
}

/// Required and defaulted float parameters (`weight`, `density`, `t`, …).
extension Double: ParameterType {
    /// `.float`.
    public static var kind: ParameterKind { .float }
    /// The number of a resolved float parameter; nil when unresolved.
    public static func typed(_ resolved: ParameterScalar?) -> Double? {
        if case .number(let x)? = resolved { return x }
        return nil
    }
    /// NaN (never reaches a graph: the lowering is rejected).
    public static var undeclaredRead: Double { .nan }
}

/// Defaulted bool parameters (`normalize`, `rescale`, …).
extension Bool: ParameterType {
    /// `.bool`.
    public static var kind: ParameterKind { .bool }
    /// The value of a resolved bool parameter; nil when unresolved.
    public static func typed(_ resolved: ParameterScalar?) -> Bool? {
        if case .bool(let b)? = resolved { return b }
        return nil
    }
    /// false (never reaches a graph: the lowering is rejected).
    public static var undeclaredRead: Bool { false }
}

/// Optional float parameters (passthrough's `scale`): nil when no scope sets them.
extension Optional: ParameterType where Wrapped == Double {
    /// `.float`.
    public static var kind: ParameterKind { .float }
    /// `.some(nil)` when unresolved, `.some(x)` for a resolved number.
    public static func typed(_ resolved: ParameterScalar?) -> Double?? {
        guard let resolved else { return .some(nil) }
        return Double.typed(resolved).map { .some($0) }
    }
    /// nil (never reaches a graph: the lowering is rejected).
    public static var undeclaredRead: Double? { nil }
}

/// A typed key for one declared parameter: the lowering reads `context[key]` (shared) or
/// `context[key, input: i]` and gets a `Value`, never a string to parse or a default to supply.
/// Keys are built only by the constructors below, so a `Parameter<Double>` or `Parameter<Bool>` is always
/// required or defaulted (resolution guarantees its value) and only a `Parameter<Double?>` may be unset.
public struct Parameter<Value: ParameterType>: Sendable {
    /// The declaration resolution reads (name, kind, scope, requirement, range).
    public let spec: ParameterSpec
    /// The config key.
    public var name: String { spec.name }

    private init(_ spec: ParameterSpec) { self.spec = spec }
}

extension Parameter where Value == Double {
    /// A float parameter without a default: a config that does not set it fails to compile.
    public static func required(_ name: String, _ scope: ParameterScope, range: ParameterRange? = nil) -> Parameter {
        Parameter(ParameterSpec(name, .float, scope, .required, range: range))
    }

    /// A float parameter with mergekit's default.
    public static func float(_ name: String, _ scope: ParameterScope, default value: Double,
                             range: ParameterRange? = nil) -> Parameter {
        Parameter(ParameterSpec(name, .float, scope, .defaultValue(.number(value)), range: range))
    }
}

extension Parameter where Value == Bool {
    /// A bool parameter with mergekit's default.
    public static func bool(_ name: String, _ scope: ParameterScope, default value: Bool) -> Parameter {
        Parameter(ParameterSpec(name, .bool, scope, .defaultValue(.bool(value))))
    }
}

extension Parameter where Value == Double? {
    /// A float parameter that may stay unset (nil when no scope sets it).
    public static func optional(_ name: String, _ scope: ParameterScope, range: ParameterRange? = nil) -> Parameter {
        Parameter(ParameterSpec(name, .float, scope, .optional, range: range))
    }
}

/// One parameter's value for one tensor, already converted and range-checked, with the config position it
/// was read from (nil: the declared default).
public struct ResolvedParameter: Hashable, Sendable {
    /// The value, of the parameter's declared kind.
    public var value: ParameterScalar
    /// Where the value (or the gradient or condition it came from) is written; nil for the default.
    public var location: SourceLocation?

    /// A resolved value.
    public init(value: ParameterScalar, location: SourceLocation?) {
        self.value = value
        self.location = location
    }
}

/// The resolved parameters of one scope of one tensor: the shared ones, or one input's.
public struct ResolvedParameters: Hashable, Sendable {
    /// By parameter name; optional parameters that are unset are absent.
    public private(set) var values: [String: ResolvedParameter] = [:]

    /// No values.
    public init() {}

    /// The resolved value called `name`, if set.
    public subscript(name: String) -> ResolvedParameter? {
        get { values[name] }
        set { values[name] = newValue }
    }
}
