import IR

/// mergekit's `GeneralizedTaskArithmeticMerge`: task vectors (model − base), optionally pruned, optionally
/// combined by TIES sign consensus, mixed by weight (normalized when asked), times `lambda`, added to the base.
/// One type, parameterized by pruning and consensus; its 8 mergekit methods are the static instances in `all`.
///
/// Scalar rounding (`GeneralizedTaskArithmeticMerge.merge_group`): `weight` becomes a tensor of the merge dtype
/// (`ScalarRounding.mergeDType`), and the weighted task vectors, their sums, the divisor and the quotient are
/// tensors of that dtype, rounded per op (`task_mix` without consensus on bf16/f16, `sign_elect` /
/// `disjoint_merge` with it). `lambda` multiplies as a Python float (PyTorch takes it as an f32 scalar: not
/// rounded to the merge dtype). `density`, `gamma` and `epsilon` only count kept ranks in Python (f64), except
/// that DARE's keep probability is a bf16 tensor on bf16 merges (`ScalarRounding.bf16Only`); DELLA's per-element
/// probabilities are computed in bf16 there too, which its kernel does not follow (its draws are not torch's).
struct GeneralizedTaskArithmetic: MergeMethod {
    /// How task vectors are sparsified before mixing (mergekit's `SparsificationMethod`).
    enum Pruning {
        /// Keep the `density` largest magnitudes (at least one).
        case magnitude
        /// Drop the `gamma` largest magnitudes, then the smallest, keeping `density` (breadcrumbs).
        case outliers
        /// Keep each element with probability `density` (DARE).
        case random
        /// Keep each element with a probability from `density − epsilon` to `density + epsilon` by its
        /// magnitude rank in its row (DELLA).
        case della
    }

    /// Each fine-tune's weight (any finite number).
    static let weight = Parameter<Double>.required("weight", .nonBase)
    /// The fraction of each task vector kept by pruning; 1 or more keeps everything (as mergekit).
    static let density = Parameter<Double>.float("density", .nonBase, default: 1, range: .nonNegative)
    /// The factor on the mixed task vectors.
    static let lambda = Parameter<Double>.float("lambda", .shared, default: 1)
    /// Only changes how mergekit stores its masks, never the values; declared so it is not reported unused.
    static let int8Mask = Parameter<Bool>.bool("int8_mask", .shared, default: false)
    /// Breadcrumbs: the fraction of largest magnitudes dropped before keeping `density`.
    static let gamma = Parameter<Double>.float("gamma", .nonBase, default: 0.01, range: .unitInterval)
    /// DELLA: the half-width of keep probabilities around `density` (density ± epsilon must lie in (0, 1)).
    static let epsilon = Parameter<Double>.float("epsilon", .nonBase, default: 0.15, range: .unitInterval)

    let spec: MethodSpec
    let pruning: Pruning?
    /// True: TIES sign election and disjoint mean (mergekit's `ConsensusMethod.sum`); false: a weighted sum.
    let consensus: Bool
    /// Divide the mix by the sum of weights; its default depends on the method.
    let normalize: Parameter<Bool>
    /// Rescale pruned task vectors (DARE/DELLA: to the L1 norm; magnitude: mergekit's rule); default per method.
    let rescale: Parameter<Bool>

    private init(_ name: String, pruning: Pruning?, consensus: Bool, normalize: Bool, rescale: Bool,
                 summary: String, reference: String) {
        self.pruning = pruning
        self.consensus = consensus
        self.normalize = .bool("normalize", .shared, default: normalize)
        self.rescale = .bool("rescale", .shared, default: rescale)
        var parameters = [Self.weight.spec, Self.density.spec, self.normalize.spec, self.rescale.spec,
                          Self.lambda.spec, Self.int8Mask.spec]
        if pruning == .outliers { parameters.append(Self.gamma.spec) }
        if pruning == .della { parameters.append(Self.epsilon.spec) }
        spec = MethodSpec(name: name, summary: summary, reference: reference, parameters: parameters, base: .required)
    }

    static let taskArithmetic = GeneralizedTaskArithmetic(
        "task_arithmetic", pruning: nil, consensus: false, normalize: false, rescale: false,
        summary: "base + λ · Σ wᵢ·(xᵢ − base)",
        reference: "[Task arithmetic](https://arxiv.org/abs/2212.04089); mergekit `GeneralizedTaskArithmeticMerge`")
    static let ties = GeneralizedTaskArithmetic(
        "ties", pruning: .magnitude, consensus: true, normalize: true, rescale: false,
        summary: "TIES: keep each task vector's `density` largest magnitudes, elect a sign per element, average the agreeing entries",
        reference: "[TIES-Merging](https://arxiv.org/abs/2306.01708); mergekit `GeneralizedTaskArithmeticMerge`")
    static let breadcrumbs = GeneralizedTaskArithmetic(
        "breadcrumbs", pruning: .outliers, consensus: false, normalize: false, rescale: false,
        summary: "task arithmetic on task vectors without their `gamma` largest and smallest magnitudes",
        reference: "[Model Breadcrumbs](https://arxiv.org/abs/2312.06795); mergekit `GeneralizedTaskArithmeticMerge`")
    static let breadcrumbsTies = GeneralizedTaskArithmetic(
        "breadcrumbs_ties", pruning: .outliers, consensus: true, normalize: false, rescale: false,
        summary: "breadcrumbs pruning, then TIES sign consensus",
        reference: "[Model Breadcrumbs](https://arxiv.org/abs/2312.06795); mergekit `GeneralizedTaskArithmeticMerge`")
    static let dareTies = GeneralizedTaskArithmetic(
        "dare_ties", pruning: .random, consensus: true, normalize: false, rescale: true,
        summary: "DARE: drop each task-vector element with probability 1 − `density`, rescale to the L1 norm, then TIES sign consensus",
        reference: "[DARE](https://arxiv.org/abs/2311.03099); mergekit `GeneralizedTaskArithmeticMerge`")
    static let dareLinear = GeneralizedTaskArithmetic(
        "dare_linear", pruning: .random, consensus: false, normalize: false, rescale: true,
        summary: "DARE pruning, then task arithmetic",
        reference: "[DARE](https://arxiv.org/abs/2311.03099); mergekit `GeneralizedTaskArithmeticMerge`")
    static let della = GeneralizedTaskArithmetic(
        "della", pruning: .della, consensus: true, normalize: true, rescale: true,
        summary: "DELLA: keep probability from `density − epsilon` (smallest magnitudes of a row) to `density + epsilon` (largest), then TIES sign consensus",
        reference: "[DELLA-Merging](https://arxiv.org/abs/2406.11617); mergekit `GeneralizedTaskArithmeticMerge`")
    static let dellaLinear = GeneralizedTaskArithmetic(
        "della_linear", pruning: .della, consensus: false, normalize: false, rescale: true,
        summary: "DELLA pruning, then task arithmetic",
        reference: "[DELLA-Merging](https://arxiv.org/abs/2406.11617); mergekit `GeneralizedTaskArithmeticMerge`")

    /// The 8 methods, in mergekit's registry order of its docs.
    static let all = [taskArithmetic, ties, breadcrumbs, breadcrumbsTies, dareTies, dareLinear, della, dellaLinear]

    /// Throws `invalidConfig` at the first weight past the merge dtype's largest value (`finiteRounded`), at `lambda`
    /// past float32's (`requireFiniteInF32`), and when DELLA's density ± epsilon leaves (0, 1) for some input.
    func lower(_ inputs: [ValueID], _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard let baseIndex = c.baseIndex else { throw .invalidConfig(c.location, "\(spec.name) needs base_model") }
        let base = inputs[baseIndex]
        let others = c.others
        if others.isEmpty { return base }
        let configured = c.values(Self.weight, of: others)
        let w = try c.finiteRounded(Self.weight, of: others, .mergeDType)
        let normalize = c[self.normalize]
        let rescale = c[self.rescale]
        try c.requireFiniteInF32(Self.lambda)
        let lambda = c[Self.lambda]
        var deltas: [ValueID] = []
        var densities: [String] = []
        for i in others {
            var delta = c.add(.sub, [inputs[i], base])
            if let pruning {
                let density = c[Self.density, input: i]
                densities.append(formatAttribute(density))
                delta = try sparsify(delta, input: i, pruning, density: density, rescale: rescale, c)
            }
            deltas.append(delta)
        }
        let summary = "weight=\(c.list(configured))" + (densities.isEmpty ? "" : " density=[\(densities.joined(separator: ", "))]")
            + " lambda=\(formatAttribute(lambda)) normalize=\(normalize)"
        let mix: ValueID
        if consensus {
            let sign = c.add(.signElect(weights: w), deltas)
            mix = c.add(.disjointMerge(weights: w, normalize: normalize, lambda: lambda), [sign] + deltas,
                        note: c.note(summary))
        } else if c.type.dtype != .f32 {
            mix = c.add(.taskMix(weights: w, normalize: normalize, lambda: lambda), deltas, note: c.note(summary))
        } else {
            var divisor = 1.0
            if normalize {
                divisor = w.reduce(0, +)
                if abs(divisor) < 1e-8 { divisor = 1 }
            }
            mix = c.add(.weightedSum(w.map { lambda * $0 / divisor }), deltas, note: c.note(summary))
        }
        return c.add(.add, [base, mix])
    }

    /// Prunes task vector `delta` of input `i` (mergekit's `sparsify`), or returns it unchanged when
    /// `density ≥ 1`, as mergekit does.
    private func sparsify(_ delta: ValueID, input i: Int, _ pruning: Pruning, density: Double, rescale: Bool,
                          _ c: LoweringContext) throws(PlanError) -> ValueID {
        guard density < 1 else { return delta }
        let note = "density=\(formatAttribute(density))"
        let n = c.type.elementCount
        switch pruning {
        case .magnitude:
            let keep: Range<Int>
            if density > 0, n > 0 {
                let k = max(1, Int(density * Double(n)))
                keep = (n - k)..<n
            } else {
                keep = 0..<0
            }
            return c.add(.magnitudePrune(keep: keep, rescale: rescale, ties: .torchDescending), [delta], note: note)
        case .outliers:
            let gamma = c[Self.gamma, input: i]
            let target = Int(density * Double(n))
            let top = Int(gamma * Double(n))
            let bottom = max(0, n - target - top)
            return c.add(.magnitudePrune(keep: bottom..<min(n, bottom + target), rescale: rescale, ties: .torchAscending),
                         [delta],
                         note: note + " gamma=\(formatAttribute(gamma))")
        case .random:
            return c.add(.randomPrune(density: c.rounded(density, .bf16Only), rescale: rescale, seed: c.randomSeed, key: c.streamKey(input: i)),
                         [delta], note: note)
        case .della:
            guard density > 0 else {
                return c.add(.magnitudePrune(keep: 0..<0, rescale: false, ties: .index), [delta], note: note + ": keeps nothing")
            }
            let epsilon = c[Self.epsilon, input: i]
            guard density - epsilon > 0, density + epsilon < 1 else {
                let at = c.location(of: Self.epsilon, input: i) ?? c.location(of: Self.density, input: i)
                    ?? c.recipe.inputs[i].location
                throw .invalidConfig(at, "\(spec.name) needs density ± epsilon within (0, 1), found density "
                                     + "\(formatAttribute(density)) and epsilon \(formatAttribute(epsilon)) "
                                     + "for tensor '\(c.recipe.inputs[i].tensor)'; choose a smaller epsilon")
            }
            return c.add(.dellaPrune(density: density, epsilon: epsilon, rescale: rescale, seed: c.randomSeed,
                                     key: c.streamKey(input: i)),
                         [delta], note: note + " epsilon=\(formatAttribute(epsilon))")
        }
    }
}
