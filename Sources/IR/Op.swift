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
    /// Keeps the elements whose magnitude rank (ascending, ties by index) is in `keep`, zeroes the rest;
    /// with `rescale`, scales the kept part back to the operand's L1 norm (TIES, breadcrumbs).
    case magnitudePrune(keep: Range<Int>, rescale: Bool)
    /// The elected sign (+1 or −1) of `Σ weights[i] · operands[i]` (TIES sign consensus; ≥ 0 elects +1).
    case signElect(weights: [Double])
    /// `operands[0]` is the elected sign; sums `weights[i] · operands[i+1]` over the inputs that agree with it,
    /// divides by the agreeing weights when `normalize`, and multiplies by `lambda` (TIES disjoint merge).
    case disjointMerge(weights: [Double], normalize: Bool, lambda: Double)

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
        case .magnitudePrune: return "magnitude_prune"
        case .signElect: return "sign_elect"
        case .disjointMerge: return "disjoint_merge"
        }
    }

    /// How many operands the op takes (`nil`: any number ≥ 1).
    public var arity: Int? {
        switch self {
        case .load: return 0
        case .cast, .scale: return 1
        case .sub, .add, .slerp: return 2
        case .magnitudePrune: return 1
        case .weightedSum, .modelStock, .signElect, .disjointMerge: return nil
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
        case .magnitudePrune(let keep, let rescale):
            return "(keep ranks \(keep.lowerBound)..<\(keep.upperBound)\(rescale ? ", rescale" : ""))"
        case .signElect(let w): return "(\(w.map(formatAttribute).joined(separator: ", ")))"
        case .disjointMerge(let w, let normalize, let lambda):
            return "(weights: \(w.map(formatAttribute).joined(separator: ", "))\(normalize ? ", normalize" : "")"
                + (lambda == 1 ? ")" : ", lambda: \(formatAttribute(lambda)))")
        }
    }
}

/// Formats an attribute value compactly: shortest form that round-trips, integers without a fraction.
public func formatAttribute(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    let short = String(format: "%.6g", x)
    return Double(short) == x ? short : "\(x)"
}

extension Op {
    /// For ops with one weight per input: how many weights they carry.
    var weightCount: Int? {
        switch self {
        case .weightedSum(let w), .signElect(let w), .disjointMerge(let w, _, _): return w.count
        default: return nil
        }
    }

    /// Operands before the weighted inputs (the elected sign of `disjoint_merge`).
    var leadingOperands: Int {
        if case .disjointMerge = self { return 1 }
        return 0
    }
}
