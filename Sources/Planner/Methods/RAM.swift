import IR

/// `ram`: Reinforced Agent Merging over task vectors: entries above `epsilon` that only one model changes are
/// kept, shared ones averaged (mergekit's `ram_merge`). Lowers to task vectors, one `ram_merge`, plus the base.
///
/// Scalar rounding (`_prepare_ram_vectors`): `tv.abs() > epsilon` compares in the merge dtype, so `epsilon` is
/// rounded to it; the kernel does so (`RamKernel.threshold`).
struct RAM: MergeMethod {
    /// The magnitude above which a task-vector entry counts as changed.
    static let epsilon = Parameter<Double>.float("epsilon", .shared, default: 1e-5, range: .nonNegative)

    let spec = MethodSpec(
        name: "ram", summary: "RAM: task-vector entries above `epsilon` that only one model changes are kept, shared ones averaged",
        reference: "[RAM](https://arxiv.org/abs/2601.13572); mergekit `ram_merge`",
        parameters: [epsilon.spec], base: .required)

    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let baseIndex = c.baseIndex else { throw .invalidConfig(c.location, "\(spec.name) needs base_model") }
        let others = c.others
        if others.isEmpty { return inputs[baseIndex] }
        let merged = c.add(.ramMerge(epsilon: c[Self.epsilon]), c.offsets(inputs, others), note: c.note("over task vectors"))
        return c.restore(merged, inputs)
    }
}
