import Foundation
import Parser

/// A parameter value after filters and gradients, with the config position it came from (nil: the default).
public struct ResolvedValue: Sendable {
    public var scalar: ScalarValue
    public var location: SourceLocation?
}

/// Resolves parameter settings for one tensor: precedence slice source > slice > model-level entry > global,
/// the first matching `filter` (substring of the tensor name) wins, gradients are interpolated at `t`.
public struct ParameterResolver {
    /// Parameter blocks from highest to lowest precedence.
    public var scopes: [ParameterMap]
    public var t: Double

    public init(scopes: [ParameterMap], t: Double) {
        self.scopes = scopes
        self.t = t
    }

    /// The value of `name` for `tensor`, or nil when no scope sets it.
    public func resolve(_ name: String, tensor: String, kind: ParameterKind) throws(PlanError) -> ResolvedValue? {
        for scope in scopes {
            guard let entry = scope[name] else { continue }
            if let value = try evaluate(entry.value, tensor: tensor, kind: kind, location: entry.location) {
                return value
            }
        }
        return nil
    }

    func evaluate(_ setting: ParameterValue, tensor: String, kind: ParameterKind,
                  location: SourceLocation) throws(PlanError) -> ResolvedValue? {
        switch setting {
        case .scalar(let s):
            return ResolvedValue(scalar: s, location: location)
        case .gradient(let values):
            return try interpolate(values, kind: kind, location: location)
        case .conditional(let conditions):
            for condition in conditions {
                if let filter = condition.filter, filter != "*", !tensor.contains(filter) { continue }
                return try evaluate(condition.value, tensor: tensor, kind: kind, location: condition.location)
            }
            return nil
        }
    }

    func interpolate(_ values: [ScalarValue], kind: ParameterKind,
                     location: SourceLocation) throws(PlanError) -> ResolvedValue? {
        guard !values.isEmpty else { return nil }
        let n = values.count
        guard kind == .float else {
            return ResolvedValue(scalar: values[Int(t * Double(n - 1))], location: location)
        }
        var numbers: [Double] = []
        for value in values {
            numbers.append(try ParameterResolver.number(value, location: location, name: "gradient value"))
        }
        let scaled = t * Double(n - 1)
        let i0 = Int(scaled)
        let i1 = min(n - 1, i0 + 1)
        let frac = scaled - Double(i0)
        return ResolvedValue(scalar: .number((1 - frac) * numbers[i0] + frac * numbers[i1]), location: location)
    }

    /// A float parameter's value (numbers, and strings that spell numbers, as pydantic accepts them).
    public static func number(_ value: ScalarValue, location: SourceLocation?, name: String) throws(PlanError) -> Double {
        switch value {
        case .number(let x): return x
        case .string(let s):
            if let x = Double(s.trimmingCharacters(in: .whitespaces)) { return x }
        case .bool: break
        }
        throw PlanError.invalidConfig(location ?? unknownLocation, "\(name) must be a number, found \(value)")
    }

    /// A bool parameter's value (`true`/`false`, 0/1, and their string spellings).
    public static func bool(_ value: ScalarValue, location: SourceLocation?, name: String) throws(PlanError) -> Bool {
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
        throw PlanError.invalidConfig(location ?? unknownLocation, "\(name) must be true or false, found \(value)")
    }
}

/// Stands in for a position when a default value is at fault (never for user-written values).
let unknownLocation = SourceLocation(file: "<default>", line: 0, column: 0)
