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
        case .slerp:
            return sums(3)
        case .nuslerp(_, let axis):
            // One vector: Σa², Σb², Σab; rows: none; columns: those three per column.
            let length = max(1, axis == .firstDim ? shape.first ?? n : shape.last ?? n)
            if axis == .flattened || n / length <= 1 { return sums(3) }
            return axis == .lastDim ? 0 : 3 * (n / length) * 8
        case .modelStock(let filterWise):
            // The fine-tunes' offset dot products, unless every row is done in its chunk.
            let fineTunes = operands - 1
            return filterWise ? 0 : sums(fineTunes * (fineTunes + 1) / 2)
        case .multislerp, .karcher:
            // The Gram matrix of the operands.
            return sums(operands * (operands + 1) / 2)
        case .magnitudePrune, .varianceTopK, .sceMerge, .arceeFusion, .randomPrune, .dellaPrune:
            _ = (histogram, rowLength)
            return wholeTensors
        }
    }
}
