import IR

/// Lowering of task-vector sparsification (mergekit's `sparsify`): magnitude, outliers, DARE and DELLA pruning.
extension MethodLowering {
    /// Prunes task vector `delta` of input `i`, or returns it unchanged when `density ≥ 1` (as mergekit does).
    func sparsify(_ delta: ValueID, input i: Int, _ prune: Pruning, density: Double, rescale: Bool,
                  type: TensorType, _ b: GraphBuilder) throws(PlanError) -> ValueID {
        guard density < 1 else { return delta }
        let parameters = recipe.inputs[i].parameters
        let note = "density=\(formatAttribute(density))"
        switch prune {
        case .magnitude, .outliers:
            let gamma = try parameters.number("gamma") ?? 0
            let keep = keptRanks(prune, density: density, gamma: gamma, count: type.elementCount)
            return b.graph.add(.magnitudePrune(keep: keep, rescale: rescale), [delta], type: type, stage: stage,
                               note: note + (prune == .outliers ? " gamma=\(formatAttribute(gamma))" : ""))
        case .random:
            return b.graph.add(.randomPrune(density: density, rescale: rescale, seed: randomSeed, key: streamKey(input: i)),
                               [delta], type: type, stage: stage, note: note)
        case .della:
            guard density > 0 else {
                return b.graph.add(.magnitudePrune(keep: 0..<0, rescale: false), [delta], type: type, stage: stage,
                                   note: note + ": keeps nothing")
            }
            let epsilon = try parameters.number("epsilon") ?? 0.15
            guard density - epsilon > 0, density + epsilon < 1 else {
                let at = parameters["epsilon"]?.location ?? parameters["density"]?.location ?? recipe.inputs[i].location
                throw .invalidConfig(at, "\(spec.name) needs density ± epsilon within (0, 1), found density "
                                     + "\(formatAttribute(density)) and epsilon \(formatAttribute(epsilon)) "
                                     + "for tensor '\(recipe.inputs[i].tensor)'; choose a smaller epsilon")
            }
            return b.graph.add(.dellaPrune(density: density, epsilon: epsilon, rescale: rescale, seed: randomSeed,
                                           key: streamKey(input: i)),
                               [delta], type: type, stage: stage, note: note + " epsilon=\(formatAttribute(epsilon))")
        }
    }

    /// The random stream of input `i` of this tensor: a hash of "stage/output tensor/input index".
    func streamKey(input i: Int) -> UInt64 {
        RandomStreamKey.hash("\(stage)/\(recipe.output)/\(i)")
    }

    /// The magnitude ranks (ascending) a magnitude or outlier pruning keeps (`density < 1`).
    private func keptRanks(_ prune: Pruning, density: Double, gamma: Double, count n: Int) -> Range<Int> {
        switch prune {
        case .outliers:
            let target = Int(density * Double(n))
            let top = Int(gamma * Double(n))
            let bottom = max(0, n - target - top)
            return bottom..<min(n, bottom + target)
        default:
            guard density > 0, n > 0 else { return 0..<0 }
            let k = max(1, Int(density * Double(n)))
            return (n - k)..<n
        }
    }
}

/// Stable 64-bit stream keys for the random ops (FNV-1a over UTF-8, then SplitMix64's finalizer); unlike
/// Swift's `Hasher`, the same text gives the same key in every process.
enum RandomStreamKey {
    static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01B3
        }
        h ^= h >> 30
        h &*= 0xBF58_476D_1CE4_E5B9
        h ^= h >> 27
        h &*= 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }
}
