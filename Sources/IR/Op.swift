import Foundation

/// A tensor-level operation. Every op computes in f32 (f64 accumulators for sums and reductions)
/// and rounds its result to the node's dtype.
public enum Op: Hashable, Sendable {
    /// Reads tensor `tensor` of input model `model` (an index into `Graph.models`).
    case load(model: Int, tensor: String)
    /// Rounds the operand to another dtype.
    case cast(DType)
    /// Multiplies the operand by a constant (passthrough `scale`).
    case scale(Double)
    /// `operands[0] - operands[1]` (a task vector).
    case sub
    /// `operands[0] + operands[1]`.
    case add
    /// `Σ coefficients[i] · operands[i]`, accumulated in f64 (linear merge, task-vector mixing).
    case weightedSum([Double])
    /// Spherical interpolation from `operands[0]` (t = 0) to `operands[1]` (t = 1) over the whole tensor.
    case slerp(t: Double)
    /// Model Stock: `operands[0]` is the base, the rest are fine-tunes.
    case modelStock(filterWise: Bool)

    /// The op's mnemonic in `--dump-ir`.
    public var mnemonic: String {
        switch self {
        case .load: return "load"
        case .cast: return "cast"
        case .scale: return "scale"
        case .sub: return "sub"
        case .add: return "add"
        case .weightedSum: return "weighted_sum"
        case .slerp: return "slerp"
        case .modelStock: return "model_stock"
        }
    }

    /// How many operands the op takes (`nil`: any number ≥ 1).
    public var arity: Int? {
        switch self {
        case .load: return 0
        case .cast, .scale: return 1
        case .sub, .add, .slerp: return 2
        case .weightedSum, .modelStock: return nil
        }
    }

    /// The op's attributes as written in `--dump-ir` (empty when it has none).
    public var attributes: String {
        switch self {
        case .load, .sub, .add: return ""
        case .cast(let d): return "(\(d.shortName))"
        case .scale(let s): return "(\(formatAttribute(s)))"
        case .weightedSum(let c): return "(\(c.map(formatAttribute).joined(separator: ", ")))"
        case .slerp(let t): return "(t=\(formatAttribute(t)))"
        case .modelStock(let f): return f ? "(filter_wise)" : ""
        }
    }
}

/// Formats an attribute value compactly: shortest form that round-trips, integers without a fraction.
public func formatAttribute(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    let short = String(format: "%.6g", x)
    return Double(short) == x ? short : "\(x)"
}
