import Foundation

/// A tensor-level operation. Every op but `copyEqual` computes in f32 (f64 accumulators for sums and reductions)
/// and rounds its result to the node's (float) dtype; `load` and `copyEqual` also carry integer and BOOL tensors,
/// as bytes.
public enum Op: Hashable, Sendable {
    /// Reads tensor `tensor` of input model `model` (an index into `Graph.models`).
    case load(model: Int, tensor: String)
    /// A LoRA adapter's update `scale · (B · A)` of one module (PEFT `LoraLayer.get_delta_weight`), `(B · A)ᵀ` when
    /// `transposed` (embeddings, `fan_in_fan_out` layers): `b` `[rows, rank]` and `a` `[rank, columns]` (the reverse
    /// when transposed) are read whole from adapter `model` (a `ModelInput` of kind `loraAdapter`) and held as f32;
    /// each element is an f32 fused multiply-add chain over the rank in the blocks MKL's `sgemm` sums (one block
    /// up to rank 192), times `scale` rounded to f32, as PyTorch's CPU matmul and scalar multiply give it. The
    /// result is f32 and streams by rows.
    case loraDelta(model: Int, a: String, b: String, rank: Int, scale: Double, transposed: Bool)
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
    /// mergekit's task-vector mix in the merge dtype (`GeneralizedTaskArithmeticMerge` without consensus, on
    /// bf16/f16): each `weights[i] · operands[i]` rounded to the node's dtype, summed in f32 in operand order and
    /// rounded; when `normalize`, divided by the rounded sum of the weights (1 when that is below 1e-8 in
    /// magnitude) and rounded; times `lambda` (as f32) when it is not 1.
    case taskMix(weights: [Double], normalize: Bool, lambda: Double)
    /// mergekit's `linear_merge` on bf16/f16 inputs: `Σ weights[i] · operands[i]` in an f32 accumulator with fused
    /// multiply-adds in operand order (the weights f32), divided by their f32 sum when `normalize`, rounded once.
    case linearMix(weights: [Double], normalize: Bool)
    /// Spherical interpolation from `operands[0]` (t = 0) to `operands[1]` (t = 1) over the whole tensor.
    case slerp(t: Double)
    /// Model Stock: `operands[0]` is the base, the rest are fine-tunes.
    case modelStock(filterWise: Bool)
    /// Keeps the elements whose ascending magnitude rank is in `keep`, zeroes the rest; `ties` says which of the
    /// elements of equal magnitude at a cut are kept. With `rescale`, scales the kept part back to the operand's L1
    /// norm (TIES, breadcrumbs).
    case magnitudePrune(keep: Range<Int>, rescale: Bool, ties: TieOrder)
    /// The elected sign (+1 or −1) of `Σ weights[i] · operands[i]` (TIES sign consensus; ≥ 0 elects +1), summed in
    /// f32 in operand order as mergekit does.
    case signElect(weights: [Double])
    /// `operands[0]` is the elected sign; sums `weights[i] · operands[i+1]` over the inputs that agree with it,
    /// divides by the agreeing weights when `normalize`, and multiplies by `lambda` (TIES disjoint merge; f32 in
    /// mergekit's order).
    case disjointMerge(weights: [Double], normalize: Bool, lambda: Double)
    /// TIES sign consensus in one op over the task vectors `operands`: elects each element's sign from
    /// `Σ electWeights[i] · operands[i]`, then merges as `disjointMerge` with `weights` (f32 in mergekit's order).
    /// Not lowered directly: `SignConsensusFusion` rewrites a `sign_elect` read only by its `disjoint_merge` into it.
    case tiesMerge(electWeights: [Double], weights: [Double], normalize: Bool, lambda: Double)
    /// `operands[0] · operands[1]`, element by element (applies a 0/1 mask).
    case mul
    /// NearSwap from `operands[0]` (the base) toward `operands[1]`: weight `clamp(t / max(|a − b|, 1e-6), 0, 1)`.
    case nearSwap(t: Double)
    /// Each element's population variance across the operands (`torch.var(dim=0, unbiased=False)`): the mean and
    /// the sum of squared deviations each accumulated in f64 over the operands in order, divided by the operand
    /// count, rounded once to the node's dtype (f32 where SCE lowers it).
    case variance
    /// A 0/1 mask of the `fraction` of elements of largest value among those of nonzero value in `operands[0]`, a
    /// `variance` (SCE's `select_topk`): equal values are taken from the lower index first, NaN ranks highest.
    case varianceTopK(fraction: Double)
    /// SCE merge: `operands[0]` is the elected sign, the rest task vectors; each weighted by its mean square
    /// (normalized over inputs), summed where it agrees with the sign, divided by the agreeing weights.
    case sceMerge
    /// SCE merge over the task vectors `operands` alone, electing each element's sign from their plain sum (f32, in
    /// operand order, ≥ 0 elects +1) as `sign_elect` with weights 1 does, then mixing as `sceMerge`. Not lowered
    /// directly: `SignConsensusFusion` rewrites a `sign_elect` of weights 1 read only by its `sce_merge` into it.
    /// With `masked`, the last operand is SCE's 0/1 `variance_topk` mask, multiplied into each task vector before
    /// the election and the mix (the products `mul` would make, exact); `SCEMaskFusion` rewrites masking `mul`s
    /// read only by the merge into it.
    case sceElectMerge(masked: Bool)
    /// Spherical interpolation from `operands[0]` (t = 0) to `operands[1]` (t = 1) over vectors along `axis`.
    case nuslerp(t: Double, axis: SlerpAxis)
    /// Barycentric interpolation on the hypersphere of all operands (whole tensors) with `weights`.
    case multislerp(weights: [Double], eps: Double)
    /// The equally weighted Karcher mean of the operands' directions, scaled by their mean norm.
    case karcher(maxIter: Int, tol: Double)
    /// Arcee Fusion: takes `operands[1]`'s elements whose KL-weighted change from `operands[0]` reaches
    /// the upper-whisker threshold (median + 1.5 · IQR), keeps `operands[0]` elsewhere.
    case arceeFusion
    /// DARE: keeps each element with probability `density` (a counter-based draw keyed by `seed`, the stream
    /// `key` and the element index), zeroes the rest; with `rescale`, scales the kept part to the operand's L1 norm.
    case randomPrune(density: Double, rescale: Bool, seed: UInt64, key: UInt64)
    /// DELLA MAGPRUNE: like `randomPrune`, but the keep probability of an element grows linearly with its
    /// magnitude rank along dimension 1, from `density − epsilon` (smallest) to `density + epsilon` (largest).
    case dellaPrune(density: Double, epsilon: Double, rescale: Bool, seed: UInt64, key: UInt64)
    /// RAM over task vectors: elements above `epsilon` in one operand are kept, shared ones are averaged.
    case ramMerge(epsilon: Double)
    /// RAM+ (tensor-local): like `ramMerge`, but each operand's unique elements are scaled by
    /// `1 + r · clamp(shared / unique, 0, alpha)` from that operand's counts of shared and unique elements.
    case ramPlusMerge(r: Double, alpha: Double, epsilon: Double)
    /// An integer or BOOL tensor copied byte for byte from `operands[0]`: every operand is the same tensor of
    /// the other inputs, and the run fails if any differs from the first in a byte (mergekit
    /// `copy_non_floating_buffer`). Operands and result have one non-float dtype; nothing is converted.
    case copyEqual
    /// The rows of a vocabulary-axis tensor rearranged into the output vocabulary (mergekit `PermutedVocabulary`):
    /// reads its sources' rows itself, like `load`, and takes no operands.
    case vocabularyGather(VocabularyGather)

    /// The op's mnemonic in `--dump-ir`.
    public var mnemonic: String {
        switch self {
        case .load: return "load"
        case .loraDelta: return "lora_delta"
        case .cast: return "cast"
        case .scale: return "scale"
        case .sub: return "sub"
        case .add: return "add"
        case .weightedSum: return "weighted_sum"
        case .taskMix: return "task_mix"
        case .linearMix: return "linear_mix"
        case .slerp: return "slerp"
        case .modelStock: return "model_stock"
        case .magnitudePrune: return "magnitude_prune"
        case .signElect: return "sign_elect"
        case .disjointMerge: return "disjoint_merge"
        case .tiesMerge: return "ties_merge"
        case .mul: return "mul"
        case .nearSwap: return "nearswap"
        case .variance: return "variance"
        case .varianceTopK: return "variance_topk"
        case .sceMerge: return "sce_merge"
        case .sceElectMerge: return "sce_elect_merge"
        case .nuslerp: return "nuslerp"
        case .multislerp: return "multislerp"
        case .karcher: return "karcher"
        case .arceeFusion: return "arcee_fusion"
        case .randomPrune: return "random_prune"
        case .dellaPrune: return "della_prune"
        case .ramMerge: return "ram_merge"
        case .ramPlusMerge: return "ramplus_merge"
        case .copyEqual: return "copy_equal"
        case .vocabularyGather: return "vocab_gather"
        }
    }

    /// How many operands the op takes (`nil`: any number ≥ 1).
    public var arity: Int? {
        switch self {
        case .load, .loraDelta, .vocabularyGather: return 0
        case .cast, .scale: return 1
        case .sub, .add, .slerp, .mul, .nearSwap, .nuslerp, .arceeFusion: return 2
        case .magnitudePrune, .randomPrune, .dellaPrune, .varianceTopK: return 1
        case .weightedSum, .taskMix, .linearMix, .modelStock, .signElect, .disjointMerge, .tiesMerge, .variance,
             .sceMerge, .sceElectMerge, .multislerp, .karcher, .ramMerge, .ramPlusMerge, .copyEqual:
            return nil
        }
    }

    /// The op's attributes as written in `--dump-ir` (empty when it has none).
    public var attributes: String {
        switch self {
        case .load, .sub, .add, .mul, .variance, .sceMerge, .arceeFusion, .copyEqual: return ""
        case .sceElectMerge(let masked): return masked ? "(masked)" : ""
        case .loraDelta(_, _, _, let rank, let scale, let transposed):
            return "(rank \(rank), scale \(formatAttribute(scale))\(transposed ? ", transposed" : ""))"
        case .cast(let d): return "(\(d.shortName))"
        case .scale(let s): return "(\(formatAttribute(s)))"
        case .weightedSum(let c): return "(\(c.map(formatAttribute).joined(separator: ", ")))"
        case .taskMix(let w, let normalize, let lambda):
            return "(weights: \(w.map(formatAttribute).joined(separator: ", "))\(normalize ? ", normalize" : "")"
                + (lambda == 1 ? ")" : ", lambda: \(formatAttribute(lambda)))")
        case .linearMix(let w, let normalize):
            return "(weights: \(w.map(formatAttribute).joined(separator: ", "))\(normalize ? ", normalize" : ""))"
        case .slerp(let t): return "(t=\(formatAttribute(t)))"
        case .modelStock(let f): return f ? "(filter_wise)" : ""
        case .magnitudePrune(let keep, let rescale, let ties):
            return "(keep ranks \(keep.lowerBound)..<\(keep.upperBound)\(rescale ? ", rescale" : ""), \(ties.description))"
        case .signElect(let w): return "(\(w.map(formatAttribute).joined(separator: ", ")))"
        case .disjointMerge(let w, let normalize, let lambda):
            return "(weights: \(w.map(formatAttribute).joined(separator: ", "))\(normalize ? ", normalize" : "")"
                + (lambda == 1 ? ")" : ", lambda: \(formatAttribute(lambda)))")
        case .tiesMerge(let e, let w, let normalize, let lambda):
            return "(weights: \(w.map(formatAttribute).joined(separator: ", "))"
                + (e == w ? "" : ", elect: \(e.map(formatAttribute).joined(separator: ", "))")
                + "\(normalize ? ", normalize" : "")" + (lambda == 1 ? ")" : ", lambda: \(formatAttribute(lambda)))")
        case .nearSwap(let t): return "(t=\(formatAttribute(t)))"
        case .varianceTopK(let f): return "(fraction=\(formatAttribute(f)))"
        case .nuslerp(let t, let axis): return "(t=\(formatAttribute(t)), \(axis.description))"
        case .multislerp(let w, let eps):
            return "(weights: \(w.map(formatAttribute).joined(separator: ", ")), eps=\(formatAttribute(eps)))"
        case .karcher(let maxIter, let tol): return "(max_iter=\(maxIter), tol=\(formatAttribute(tol)))"
        case .randomPrune(let density, let rescale, let seed, let key):
            return "(density=\(formatAttribute(density))\(rescale ? ", rescale" : ""), seed=\(seed), key=\(hexKey(key)))"
        case .dellaPrune(let density, let epsilon, let rescale, let seed, let key):
            return "(density=\(formatAttribute(density)), epsilon=\(formatAttribute(epsilon))"
                + "\(rescale ? ", rescale" : ""), seed=\(seed), key=\(hexKey(key)))"
        case .ramMerge(let epsilon): return "(epsilon=\(formatAttribute(epsilon)))"
        case .ramPlusMerge(let r, let alpha, let epsilon):
            return "(r=\(formatAttribute(r)), alpha=\(formatAttribute(alpha)), epsilon=\(formatAttribute(epsilon)))"
        case .vocabularyGather(let gather): return gather.summary
        }
    }
}

/// A random stream key as 16 hex digits (`0x…`), as `--dump-ir` and `plan --format json` print it.
public func hexKey(_ key: UInt64) -> String {
    let digits = String(key, radix: 16)
    return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
}

/// Formats a number compactly for `--dump-ir` and messages: integers without a fraction, others in the shortest
/// of `%.6g` and Swift's round-trip form that reads back as the same `Double`.
public func formatAttribute(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    let short = String(format: "%.6g", x)
    return Double(short) == x ? short : "\(x)"
}

extension Op {
    /// For ops with one weight per input: how many weights they carry.
    var weightCount: Int? {
        switch self {
        case .weightedSum(let w), .signElect(let w), .disjointMerge(let w, _, _), .multislerp(let w, _),
             .taskMix(let w, _, _), .linearMix(let w, _):
            return w.count
        case .tiesMerge(let e, let w, _, _): return e.count == w.count ? w.count : nil
        default: return nil
        }
    }

    /// Operands before the weighted inputs (the elected sign of `disjoint_merge`).
    var leadingOperands: Int {
        if case .disjointMerge = self { return 1 }
        return 0
    }
}

/// Which of the elements whose magnitude equals a cut's a `magnitude_prune` keeps (the elements of other
/// magnitudes are decided by magnitude alone).
public enum TieOrder: Hashable, Sendable, CustomStringConvertible {
    /// Equal magnitudes ranked by index, the lower index first in ascending rank order.
    case index
    /// As PyTorch's CPU `torch.argsort(|x|, descending=True)` places them (mergekit `sparsify.magnitude` keeps its
    /// first k): ascending ranks `lo..<hi` are its positions `n − hi..<n − lo`.
    case torchDescending
    /// As PyTorch's CPU `torch.sort(|x|)` (ascending) places them (mergekit `sparsify.magnitude_outliers`):
    /// ascending ranks `lo..<hi` are its positions `lo..<hi`.
    case torchAscending

    /// How `--dump-ir` names the order: `index ties`, `torch ties` or `torch ascending ties`.
    public var description: String {
        switch self {
        case .index: return "index ties"
        case .torchDescending: return "torch ties"
        case .torchAscending: return "torch ascending ties"
        }
    }

    /// Whether the order is PyTorch's (whose kernel gathers the whole tensor).
    public var isTorch: Bool { self != .index }

    /// The most elements PyTorch's order is reproduced for (the replay packs element indices in 32 bits).
    public static let torchMaxElementCount = 1 << 32
}

/// Which vectors a spherical interpolation treats as points on the sphere.
public enum SlerpAxis: Hashable, Sendable, CustomStringConvertible {
    /// The whole tensor, flattened, is one vector.
    case flattened
    /// Every run along the last dimension (each row of a matrix) is a vector.
    case lastDim
    /// Every run along the first dimension (each column of a matrix) is a vector.
    case firstDim

    /// How `--dump-ir` names the axis.
    public var description: String {
        switch self {
        case .flattened: return "flatten"
        case .lastDim: return "rows"
        case .firstDim: return "columns"
        }
    }
}

extension Op {
    /// What is wrong with the op's attributes for a result of `elementCount` elements, or nil when they are in
    /// range: weights, `t`, `lambda` and thresholds finite; densities, fractions and `t` of the interpolations
    /// in [0, 1]; kept ranks inside the tensor; as many election weights as merge weights.
    public func attributeProblem(elementCount n: Int) -> String? {
        func finite(_ name: String, _ values: [Double]) -> String? {
            values.allSatisfy(\.isFinite) ? nil : "\(name) must be finite, found \(values.map(formatAttribute))"
        }
        func unit(_ name: String, _ x: Double) -> String? {
            (0...1).contains(x) ? nil : "\(name) must be in [0, 1], found \(formatAttribute(x))"
        }
        switch self {
        case .load, .cast, .sub, .add, .mul, .variance, .sceMerge, .sceElectMerge, .arceeFusion, .copyEqual:
            return nil
        case .loraDelta(_, _, _, let rank, let scale, _):
            return rank < 1 ? "rank must be at least 1, found \(rank)" : finite("scale", [scale])
        case .scale(let s): return finite("scale", [s])
        case .weightedSum(let w), .signElect(let w), .linearMix(let w, _): return finite("weights", w)
        case .taskMix(let w, _, let lambda): return finite("weights", w) ?? finite("lambda", [lambda])
        case .disjointMerge(let w, _, let lambda): return finite("weights", w) ?? finite("lambda", [lambda])
        case .tiesMerge(let e, let w, _, let lambda):
            if e.count != w.count { return "\(e.count) election weights for \(w.count) merge weights" }
            return finite("weights", e + w) ?? finite("lambda", [lambda])
        case .slerp(let t): return unit("t", t)
        case .nuslerp(let t, _): return finite("t", [t])
        case .nearSwap(let t): return finite("t", [t])
        case .modelStock: return nil
        case .magnitudePrune(let keep, _, let ties):
            if ties.isTorch && n > TieOrder.torchMaxElementCount {
                return "PyTorch's order among equal magnitudes is replayed for at most 2^32 elements, not \(n)"
            }
            return keep.lowerBound >= 0 && keep.upperBound <= n ? nil
                : "kept ranks \(keep.lowerBound)..<\(keep.upperBound) are outside the tensor's \(n) elements"
        case .varianceTopK(let fraction): return unit("fraction", fraction)
        case .multislerp(let w, let eps): return finite("weights", w) ?? finite("eps", [eps])
        case .karcher(let maxIter, let tol): return maxIter < 0 ? "max_iter must be ≥ 0" : finite("tol", [tol])
        case .randomPrune(let density, _, _, _): return unit("density", density)
        case .dellaPrune(let density, let epsilon, _, _, _):
            return unit("density - epsilon", density - epsilon) ?? unit("density + epsilon", density + epsilon)
        case .ramMerge(let epsilon): return finite("epsilon", [epsilon])
        case .ramPlusMerge(let r, let alpha, let epsilon): return finite("r, alpha, epsilon", [r, alpha, epsilon])
        case .vocabularyGather: return nil
        }
    }
}

/// An op attribute's value, for machine-readable plans (`plan --format json`).
public enum AttributeValue: Hashable, Sendable {
    case number(Double)
    case numbers([Double])
    case integer(Int)
    case unsigned(UInt64)
    case bool(Bool)
    case text(String)
}

extension Op {
    /// The op's attributes by name (what `attributes` prints in parentheses; loads name their model and tensor).
    public var namedAttributes: [(name: String, value: AttributeValue)] {
        switch self {
        case .load(let model, let tensor): return [("model", .text("@m\(model)")), ("tensor", .text(tensor))]
        case .loraDelta(let model, let a, let b, let rank, let scale, let transposed):
            return [("model", .text("@m\(model)")), ("a", .text(a)), ("b", .text(b)), ("rank", .integer(rank)),
                    ("scale", .number(scale)), ("transposed", .bool(transposed))]
        case .sub, .add, .mul, .variance, .sceMerge, .arceeFusion, .copyEqual: return []
        case .sceElectMerge(let masked): return masked ? [("masked", .bool(true))] : []
        case .cast(let dtype): return [("dtype", .text(dtype.shortName))]
        case .scale(let s): return [("scale", .number(s))]
        case .weightedSum(let c): return [("coefficients", .numbers(c))]
        case .taskMix(let w, let normalize, let lambda):
            return [("weights", .numbers(w)), ("normalize", .bool(normalize)), ("lambda", .number(lambda))]
        case .linearMix(let w, let normalize): return [("weights", .numbers(w)), ("normalize", .bool(normalize))]
        case .slerp(let t): return [("t", .number(t))]
        case .modelStock(let filterWise): return [("filter_wise", .bool(filterWise))]
        case .magnitudePrune(let keep, let rescale, let ties):
            return [("keep_from", .integer(keep.lowerBound)), ("keep_to", .integer(keep.upperBound)),
                    ("rescale", .bool(rescale)), ("ties", .text(ties.description))]
        case .signElect(let w): return [("weights", .numbers(w))]
        case .disjointMerge(let w, let normalize, let lambda):
            return [("weights", .numbers(w)), ("normalize", .bool(normalize)), ("lambda", .number(lambda))]
        case .tiesMerge(let e, let w, let normalize, let lambda):
            return [("elect_weights", .numbers(e)), ("weights", .numbers(w)), ("normalize", .bool(normalize)),
                    ("lambda", .number(lambda))]
        case .nearSwap(let t): return [("t", .number(t))]
        case .varianceTopK(let fraction): return [("fraction", .number(fraction))]
        case .nuslerp(let t, let axis): return [("t", .number(t)), ("axis", .text(axis.description))]
        case .multislerp(let w, let eps): return [("weights", .numbers(w)), ("eps", .number(eps))]
        case .karcher(let maxIter, let tol): return [("max_iter", .integer(maxIter)), ("tol", .number(tol))]
        case .randomPrune(let density, let rescale, let seed, let key):
            return [("density", .number(density)), ("rescale", .bool(rescale)), ("seed", .unsigned(seed)),
                    ("key", .text(hexKey(key)))]
        case .dellaPrune(let density, let epsilon, let rescale, let seed, let key):
            return [("density", .number(density)), ("epsilon", .number(epsilon)), ("rescale", .bool(rescale)),
                    ("seed", .unsigned(seed)), ("key", .text(hexKey(key)))]
        case .ramMerge(let epsilon): return [("epsilon", .number(epsilon))]
        case .ramPlusMerge(let r, let alpha, let epsilon):
            return [("r", .number(r)), ("alpha", .number(alpha)), ("epsilon", .number(epsilon))]
        case .vocabularyGather(let gather):
            let counts = gather.counts
            return [("sources", .text(gather.sources.map { "@m\($0.model) \($0.tensor)" }.joined(separator: ", "))),
                    ("copied", .numbers(counts.copied.map(Double.init))), ("averaged", .integer(counts.averaged)),
                    ("zero", .integer(counts.zero)), ("padding", .integer(gather.paddingRows))]
        }
    }
}
