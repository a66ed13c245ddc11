import IR
import Foundation
import Parser

/// A parameter setting after filters and gradients, as written (not yet converted to its kind), with the config
/// position it came from.
public struct ResolvedValue: Sendable {
    /// The scalar as written (or interpolated from a gradient).
    public var scalar: ScalarValue
    /// Where the setting, or the matching condition, is written.
    public var location: SourceLocation?
}

/// Resolves parameter settings for one tensor: precedence slice source > slice > model-level entry > global,
/// the first matching `filter` (substring of the tensor name) wins, gradients are interpolated at `t`.
public struct ParameterResolver {
    /// Parameter blocks from highest to lowest precedence.
    public var scopes: [ParameterMap]
    /// The gradient position: the layer's index within its slice over (layers − 1); 0 outside the layers.
    public var t: Double

    /// A resolver over `scopes` (highest precedence first) at gradient position `t`.
    public init(scopes: [ParameterMap], t: Double) {
        self.scopes = scopes
        self.t = t
    }

    /// The setting of `name` for `tensor` as written (gradients interpolated when `kind` is float), or nil when
    /// no scope sets it. `value(of:tensor:)` converts and checks it. Throws for a float gradient entry that is not
    /// a finite number.
    public func resolve(_ name: String, tensor: String, kind: ParameterKind) throws(PlanError) -> ResolvedValue? {
        for scope in scopes {
            guard let entry = scope[name] else { continue }
            if let value = try evaluate(entry.value, name: name, tensor: tensor, kind: kind, location: entry.location) {
                return value
            }
        }
        return nil
    }

    /// The typed value of the declared parameter `p` for `tensor`: the first scope's setting (filters and
    /// gradients applied), converted to `p.kind` and checked to be finite and within `p.range`; else the
    /// declared default (with no location); nil when nothing sets a required or optional parameter.
    /// Throws `invalidConfig` at the value's `file:line:col`, naming the parameter and the tensor, for a value of
    /// the wrong kind, NaN or ±inf, or a number out of range.
    public func value(of p: ParameterSpec, tensor: String) throws(PlanError) -> ResolvedParameter? {
        guard let setting = try resolve(p.name, tensor: tensor, kind: p.kind) else {
            if case .defaultValue(let value) = p.requirement { return ResolvedParameter(value: value, location: nil) }
            return nil
        }
        let location = setting.location ?? unknownLocation
        switch p.kind {
        case .bool:
            let b = try ParameterResolver.bool(setting.scalar, location: location, name: p.name, tensor: tensor)
            return ResolvedParameter(value: .bool(b), location: setting.location)
        case .float:
            let x = try ParameterResolver.number(setting.scalar, location: location, name: p.name, tensor: tensor)
            guard x.isFinite else {
                throw .invalidConfig(location, "\(p.name) must be a finite number, found \(x) for tensor '\(tensor)'")
            }
            if let range = p.range, !range.contains(x) {
                throw .invalidConfig(location, "\(p.name) must be \(range.requirementText), found \(formatAttribute(x)) "
                                     + "for tensor '\(tensor)'")
            }
            return ResolvedParameter(value: .number(x), location: setting.location)
        }
    }

    func evaluate(_ setting: ParameterValue, name: String, tensor: String, kind: ParameterKind,
                  location: SourceLocation) throws(PlanError) -> ResolvedValue? {
        switch setting {
        case .scalar(let s):
            return ResolvedValue(scalar: s, location: location)
        case .gradient(let values):
            return try interpolate(values, kind: kind, location: location, name: name, tensor: tensor)
        case .conditional(let conditions):
            for condition in conditions {
                if let filter = condition.filter, filter != "*", !tensor.contains(filter) { continue }
                return try evaluate(condition.value, name: name, tensor: tensor, kind: kind, location: condition.location)
            }
            return nil
        }
    }

    /// The gradient `values` at `t`: linear interpolation between neighbours for floats (every entry must be a
    /// finite number), the nearest lower entry otherwise.
    func interpolate(_ values: [ScalarValue], kind: ParameterKind, location: SourceLocation, name: String,
                     tensor: String) throws(PlanError) -> ResolvedValue? {
        guard !values.isEmpty else { return nil }
        let n = values.count
        guard kind == .float else {
            return ResolvedValue(scalar: values[Int(t * Double(n - 1))], location: location)
        }
        var numbers: [Double] = []
        for value in values {
            let x = try ParameterResolver.number(value, location: location, name: "gradient value")
            guard x.isFinite else {
                throw .invalidConfig(location, "\(name) must be a finite number, found \(x) in its gradient "
                                     + "for tensor '\(tensor)'")
            }
            numbers.append(x)
        }
        let scaled = t * Double(n - 1)
        let i0 = Int(scaled)
        let i1 = min(n - 1, i0 + 1)
        let frac = scaled - Double(i0)
        return ResolvedValue(scalar: .number((1 - frac) * numbers[i0] + frac * numbers[i1]), location: location)
    }

    /// A float parameter's value (numbers, and strings that spell numbers, as pydantic accepts them).
    /// Throws `invalidConfig` at `location` ("NAME must be a number, found …", naming `tensor` when given).
    public static func number(_ value: ScalarValue, location: SourceLocation?, name: String,
                              tensor: String? = nil) throws(PlanError) -> Double {
        switch value {
        case .number(let x): return x
        case .string(let s):
            if let x = Double(s.trimmingCharacters(in: .whitespaces)) { return x }
        case .bool: break
        }
        throw PlanError.invalidConfig(location ?? unknownLocation, "\(name) must be a number, found \(value)"
                                      + (tensor.map { " for tensor '\($0)'" } ?? ""))
    }

    /// A bool parameter's value (`true`/`false`, 0/1, and their string spellings).
    /// Throws `invalidConfig` at `location` ("NAME must be true or false, found …", naming `tensor` when given).
    public static func bool(_ value: ScalarValue, location: SourceLocation?, name: String,
                            tensor: String? = nil) throws(PlanError) -> Bool {
        switch value {
        case .bool(let b): return b
        case .number(let x) where x == 0 || x == 1: return x == 1
        case .string(let s):
            switch s.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: break
            }
        default: break
        }
        throw PlanError.invalidConfig(location ?? unknownLocation, "\(name) must be true or false, found \(value)"
                                      + (tensor.map { " for tensor '\($0)'" } ?? ""))
    }
}

/// Stands in for a position when a default value is at fault (never for user-written values).
let unknownLocation = SourceLocation(file: "<default>", line: 0, column: 0)
