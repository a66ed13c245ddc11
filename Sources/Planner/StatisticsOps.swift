import IR

extension Op {
    /// Whether the op's kernel may make statistics passes over its operands before producing output (then its
    /// operands are computed once per pass unless the planner retains them).
    public var takesStatisticsPasses: Bool {
        switch self {
        case .slerp, .magnitudePrune, .varianceTopK, .sceMerge, .multislerp, .karcher, .arceeFusion, .ramPlusMerge:
            return true
        case .modelStock(let filterWise):
            return !filterWise
        case .nuslerp(_, let axis):
            return axis != .lastDim
        case .randomPrune(_, let rescale, _, _), .dellaPrune(_, _, let rescale, _, _):
            return rescale
        case .load, .cast, .scale, .sub, .add, .mul, .weightedSum, .signElect, .disjointMerge, .nearSwap, .ramMerge:
            return false
        }
    }
}
