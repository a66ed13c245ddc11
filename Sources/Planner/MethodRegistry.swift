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
        MethodSpec(name: "dare_ties",
                   summary: "DARE: drop task-vector elements at random (keep `density`), rescale, then TIES sign consensus",
                   parameters: taskVectorParameters(normalize: false, rescale: true),
                   base: .required),
        MethodSpec(name: "dare_linear",
                   summary: "DARE: drop task-vector elements at random (keep `density`), rescale, then task arithmetic",
                   parameters: taskVectorParameters(normalize: false, rescale: true),
                   base: .required),
        MethodSpec(name: "della",
                   summary: "DELLA: drop task-vector elements at random, larger ones less often, then TIES sign consensus",
                   parameters: taskVectorParameters(normalize: true, rescale: true) + [dellaEpsilon],
                   base: .required),
        MethodSpec(name: "della_linear",
                   summary: "DELLA: drop task-vector elements at random, larger ones less often, then task arithmetic",
                   parameters: taskVectorParameters(normalize: false, rescale: true) + [dellaEpsilon],
                   base: .required),
        MethodSpec(name: "ram", summary: "RAM: keep elements one task vector changes, average those several change",
                   parameters: [ParameterSpec("epsilon", .float, .shared, default: .number(1e-5))],
                   base: .required),
        MethodSpec(name: "ramplus_tl",
                   summary: "RAM+ (tensor-local): RAM with each model's unique changes scaled up by its share of overlap",
                   parameters: [
                       ParameterSpec("r", .float, .shared, default: .number(0.1)),
                       ParameterSpec("alpha", .float, .shared, default: .number(0.2)),
                       ParameterSpec("epsilon", .float, .shared, default: .number(1e-5)),
                   ], base: .required),
        MethodSpec(name: "slerp", summary: "spherical interpolation from the base (t = 0) to the other model (t = 1)",
                   parameters: [ParameterSpec("t", .float, .shared)],
                   base: .required, minInputs: 2, maxInputs: 2),
        MethodSpec(name: "model_stock", summary: "interpolates the fine-tunes' average toward the base by their angle",
                   parameters: [ParameterSpec("filter_wise", .bool, .shared, default: .bool(false))],
                   base: .required, minInputs: 3),
        MethodSpec(name: "passthrough", summary: "copies one model's tensors (layer stacking with slices), optionally scaled",
                   parameters: [ParameterSpec("scale", .float, .input, optional: true)],
                   base: .ignored, maxInputs: 1),
        MethodSpec(name: "nearswap", summary: "moves the base toward the other model where they differ by less than about t",
                   parameters: [ParameterSpec("t", .float, .shared)],
                   base: .required, minInputs: 2, maxInputs: 2),
        MethodSpec(name: "sce", summary: "SCE: keep the highest-variance task-vector elements, elect signs, mix by energy",
                   parameters: [
                       ParameterSpec("int8_mask", .bool, .shared, default: .bool(false)),
                       ParameterSpec("select_topk", .float, .shared, default: .number(1)),
                   ], base: .required),
        MethodSpec(name: "nuslerp", summary: "spherical interpolation of two models (or their task vectors), per row or flattened",
                   parameters: [
                       ParameterSpec("weight", .float, .nonBase),
                       ParameterSpec("nuslerp_row_wise", .bool, .shared, default: .bool(false)),
                       ParameterSpec("nuslerp_flatten", .bool, .shared, default: .bool(true)),
                   ], base: .optional, minNonBase: 2, maxNonBase: 2),
        MethodSpec(name: "multislerp", summary: "barycentric interpolation of any number of models on the hypersphere",
                   parameters: [
                       ParameterSpec("weight", .float, .nonBase),
                       ParameterSpec("normalize_weights", .bool, .shared, default: .bool(true)),
                       ParameterSpec("eps", .float, .shared, default: .number(1e-8)),
                   ], base: .optional, minNonBase: 1),
        MethodSpec(name: "karcher", summary: "Riemannian (Karcher) mean of the models' directions, scaled by their mean norm",
                   parameters: [
                       ParameterSpec("max_iter", .float, .shared, default: .number(10)),
                       ParameterSpec("tol", .float, .shared, default: .number(1e-5)),
                   ], base: .ignored),
        MethodSpec(name: "arcee_fusion", summary: "takes the other model's elements whose KL-weighted change stands out",
                   parameters: [], base: .required, minInputs: 2, maxInputs: 2),
    ]

    /// Methods of mergekit 0.1.5 that later work will add; asking for one is "not implemented: NAME".
    /// Empty: every merge method of mergekit 0.1.5 compiles.
    public static let pending: [String] = []

    /// The spec of an implemented method.
    public static func spec(named name: String) -> MethodSpec? {
        implemented.first { $0.name == name }
    }

    /// DELLA's per-model half-width of keep probabilities around `density`.
    static let dellaEpsilon = ParameterSpec("epsilon", .float, .nonBase, default: .number(0.15))

    static func taskVectorParameters(normalize: Bool, rescale: Bool = false) -> [ParameterSpec] {
        [
            ParameterSpec("weight", .float, .nonBase),
            ParameterSpec("density", .float, .nonBase, default: .number(1)),
            ParameterSpec("normalize", .bool, .shared, default: .bool(normalize)),
            ParameterSpec("rescale", .bool, .shared, default: .bool(rescale)),
            ParameterSpec("lambda", .float, .shared, default: .number(1)),
            ParameterSpec("int8_mask", .bool, .shared, default: .bool(false)),
        ]
    }
}
