import IR

/// `passthrough`: copies one model's tensors, optionally scaled; with `slices:` it stacks layer ranges
/// (frankenmerges) (mergekit's `PassthroughMerge`). Lowers to the input itself, or one `scale` node.
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
