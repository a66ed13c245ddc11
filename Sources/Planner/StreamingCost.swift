import IR

extension Op {
    /// An upper bound of the bytes the executor's streaming kernel for this op holds for a whole tensor of
    /// `shape`, beyond its chunk buffers: selection histograms, per-block partial sums, per-thread row scratch.
    public func streamingStateBytes(shape: [Int], operands: Int, threads: Int) -> Int {
        let n = shape.reduce(1, *)
        let rowLength = shape.count < 2 ? n : shape[shape.count - 1]
        let blocks = max(1, (n + (1 << 16) - 1) >> 16)
        // A `StreamingSelect` of `ranks` ranks: per-worker tables of 65536 counts for each distinct high bucket.
        let histogram = { (ranks: Int) in (threads + 1) * ranks * (1 << 16) * 8 }
        let sums = { (width: Int) in blocks * width * 8 }
        let ties = blocks * 2 * 8
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
        case .magnitudePrune(let keep, let rescale):
            // Two selected ranks (none when everything is kept), boundary-tie positions, the L1 norms.
            let kept = max(0, keep.lowerBound)..<max(max(0, keep.lowerBound), min(n, keep.upperBound))
            guard !kept.isEmpty else { return 0 }
            let select = kept.count == n ? 0 : histogram(2)
            return select + ties + (rescale ? sums(2) : 0)
        case .varianceTopK(let fraction):
            return fraction > 0 && fraction < 1 ? histogram(1) + ties : 0
        case .arceeFusion:
            // Three quartiles, each row's KL divergence, one row's softmaxes and KL terms per worker.
            let rows = n / max(1, rowLength)
            return histogram(3) + rows * 4 + min(threads, max(1, rows)) * 3 * rowLength * 4
        case .randomPrune(_, let rescale, _, _):
            return rescale ? sums(2) : 0
        case .dellaPrune(_, _, let rescale, _, _):
            return DellaScratch(shape: shape, threads: threads).bytes(rescale: rescale) + (rescale ? sums(2) : 0)
        case .sceMerge:
            return sums(max(0, operands - 1))
        }
    }
}
