/// The merge methods mergegraph knows, with mergekit 0.1.5's parameters and defaults.
public enum MethodRegistry {
    /// Methods that compile. Any other name is "not implemented".
    public static let implemented: [MethodSpec] = [
        MethodSpec(name: "linear", summary: "weighted average of the models (normalized by the sum of weights)",
                   parameters: [
                       ParameterSpec("weight", .float, .input),
                       ParameterSpec("normalize", .bool, .shared, default: .bool(true)),
                   ], base: .ignored),
        MethodSpec(name: "task_arithmetic",
                   summary: "base + lambda · Σ weight · (model − base)",
                   parameters: taskVectorParameters(normalize: false),
                   base: .required),
        MethodSpec(name: "ties",
                   summary: "TIES: prune each task vector to its largest `density`, elect signs, average the agreeing ones",
                   parameters: taskVectorParameters(normalize: true),
                   base: .required),
        MethodSpec(name: "breadcrumbs",
                   summary: "task arithmetic on task vectors without their largest `gamma` and smallest entries",
                   parameters: taskVectorParameters(normalize: false) + [ParameterSpec("gamma", .float, .nonBase, default: .number(0.01))],
                   base: .required),
        MethodSpec(name: "breadcrumbs_ties",
                   summary: "breadcrumbs pruning followed by TIES sign consensus",
                   parameters: taskVectorParameters(normalize: false) + [ParameterSpec("gamma", .float, .nonBase, default: .number(0.01))],
                   base: .required),
        MethodSpec(name: "slerp", summary: "spherical interpolation from the base (t = 0) to the other model (t = 1)",
                   parameters: [ParameterSpec("t", .float, .shared)],
                   base: .required, minInputs: 2, maxInputs: 2),
        MethodSpec(name: "model_stock", summary: "interpolates the fine-tunes' average toward the base by their angle",
                   parameters: [ParameterSpec("filter_wise", .bool, .shared, default: .bool(false))],
                   base: .required, minInputs: 3),
        MethodSpec(name: "passthrough", summary: "copies one model's tensors (layer stacking with slices), optionally scaled",
                   parameters: [ParameterSpec("scale", .float, .input, optional: true)],
                   base: .ignored, maxInputs: 1),
    ]

    /// Methods of mergekit 0.1.5 that later work will add; asking for one is "not implemented: NAME".
    public static let pending: [String] = [
        "dare_ties", "dare_linear", "della", "della_linear", "sce", "ram", "ramplus_tl", "nuslerp", "multislerp", "karcher", "nearswap", "arcee_fusion",
    ]

    public static func spec(named name: String) -> MethodSpec? {
        implemented.first { $0.name == name }
    }

    static func taskVectorParameters(normalize: Bool) -> [ParameterSpec] {
        [
            ParameterSpec("weight", .float, .nonBase),
            ParameterSpec("density", .float, .nonBase, default: .number(1)),
            ParameterSpec("normalize", .bool, .shared, default: .bool(normalize)),
            ParameterSpec("rescale", .bool, .shared, default: .bool(false)),
            ParameterSpec("lambda", .float, .shared, default: .number(1)),
            ParameterSpec("int8_mask", .bool, .shared, default: .bool(false)),
        ]
    }
}
