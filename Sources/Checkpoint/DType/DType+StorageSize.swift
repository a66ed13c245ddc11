import IR

extension DType {
    /// Bytes a tensor of `shape` occupies in this dtype, or nil for a negative dimension or an overflowing size.
    func storageByteCount(shape: [Int]) -> Int? {
        var total = byteSize
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            total = product
        }
        return total
    }
}
