import IR

/// `model_stock`: pulls the fine-tunes' average toward the base by the mean angle between their task vectors
/// (mergekit's `ModelStockMerge`). Lowers to one `model_stock` node, base first.
///
/// Scalar rounding (`model_stock_merge_method`): no config scalar reaches a tensor.
struct ModelStock: MergeMethod {
    /// Compute the angle per row (filter) instead of over the whole tensor.
    static let filterWise = Parameter<Bool>.bool("filter_wise", .shared, default: false)

    let spec = MethodSpec(
        name: "model_stock",
        summary: "pulls the fine-tunes' average toward the base by the mean angle between their task vectors",
        reference: "[Model Stock](https://arxiv.org/abs/2403.19522); mergekit `ModelStockMerge`",
        parameters: [filterWise.spec], base: .required, minInputs: 3)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let baseIndex = c.baseIndex else { throw .invalidConfig(c.location, "model_stock needs base_model") }
        let ordered = [inputs[baseIndex]] + c.others.map { inputs[$0] }
        return c.add(.modelStock(filterWise: c[Self.filterWise]), ordered, note: c.note("base first"))
    }
}
