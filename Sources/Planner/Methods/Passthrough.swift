import IR

/// `passthrough`: copies one model's tensors, optionally scaled; with `slices:` it stacks layer ranges
/// (frankenmerges) (mergekit's `PassthroughMerge`). Lowers to the input itself, or one `scale` node.
///
/// Scalar rounding (`passthrough_merge_method`): `tensor * scale` with a Python scalar, which PyTorch applies as
/// an f32 scalar to a bf16/f16 tensor and rounds the product once: not rounded to the merge dtype (the `scale`
/// kernel multiplies by `Float(scale)`).
struct Passthrough: MergeMethod {
    /// A factor on the copied tensor (unset: copied as is).
    static let scale = Parameter<Double?>.optional("scale", .input)

    let spec = MethodSpec(
        name: "passthrough",
        summary: "copies one model's tensors; with `slices:` it stacks layer ranges (frankenmerges)",
        reference: "mergekit `PassthroughMerge`",
        parameters: [scale.spec], base: .ignored, maxInputs: 1)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let scale = c[Self.scale, input: 0] else { return inputs[0] }
        return c.add(.scale(scale), [inputs[0]])
    }
}
