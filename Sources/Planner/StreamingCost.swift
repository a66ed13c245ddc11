import IR

extension Op {
    /// An upper bound of the bytes the executor's streaming kernel for this op holds for a whole tensor of
    /// `shape`, beyond its chunk buffers: selection histograms, per-block partial sums, per-thread row scratch.
    public func streamingStateBytes(shape: [Int], operands: Int, threads: Int) -> Int {
        let n = shape.reduce(1, *)
        let rowLength = shape.count < 2 ? n : shape[shape.count - 1]
        let blocks = max(1, (n + (1 << 16) - 1) >> 16)
        let histogram = (threads + 1) * (1 << 16) * 8
        let sums = { (width: Int) in blocks * width * 8 }
        let wholeTensors = (operands + 1) * n * 4
        switch self {
        case .load, .cast, .scale, .sub, .add, .mul, .weightedSum, .signElect, .disjointMerge, .nearSwap, .ramMerge:
            return 0
        case .ramPlusMerge:
            return sums(2 * operands)
        case .randomPrune(_, let rescale, _, _):
            return rescale ? sums(2) : 0
        case .dellaPrune(_, _, let rescale, _, _):
            return Op.dellaScratchBytes(shape: shape, threads: threads, rescale: rescale) + (rescale ? sums(2) : 0)
        case .sceMerge:
            return sums(max(0, operands - 1))
        case .slerp, .modelStock, .magnitudePrune, .varianceTopK, .nuslerp, .multislerp, .karcher, .arceeFusion:
            _ = (histogram, rowLength)
            return wholeTensors
        }
    }
}
