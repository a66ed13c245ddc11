/// mergekit's optional L1 rescaling of a pruned tensor in streaming form: one pass summing `|x|` and `|kept|`
/// (f64, index order within each block, as `StreamingSums` folds), then the kept elements are multiplied by
/// `Float(‖x‖₁ / ‖kept‖₁)` in f32 — unless either norm is below 1e-7, when they stay as they are.
final class L1Rescale {
    private var sums: StreamingSums?
    private let parallel: Parallel
    /// The f32 factor of kept elements: 1 until the pass is done, when not rescaling, or when a norm vanishes.
    private(set) var factor: Float = 1

    /// A rescale that needs its pass when `enabled` (its sums are counted in `context.memory`).
    init(enabled: Bool, context: KernelContext) {
        parallel = context.parallel
        sums = enabled ? StreamingSums(elementCount: context.elementCount, width: 2, memory: context.memory) : nil
    }

    /// Whether the norms still have to be measured.
    var needsPass: Bool { sums != nil }

    /// Folds elements `range` (global indices): `x` is the input, `keep(i)` whether element `i` is kept.
    func add(_ range: Range<Int>, x: UnsafePointer<Float>, keep: @Sendable (Int) -> Bool) {
        let input = SendablePointer(x)
        sums?.add(range, parallel: parallel) { r, acc in
            var whole = acc[0], kept = acc[1]
            for i in r {
                let v = input.pointer[i]
                whole += Double(abs(v))
                kept += Double(abs(keep(i) ? v : 0))
            }
            acc[0] = whole
            acc[1] = kept
        }
    }

    /// Ends the pass: fixes the factor and frees the sums.
    func finish() {
        guard let sums else { return }
        factor = Self.factor(norms: sums.totals())
        self.sums = nil
    }

    /// mergekit's rule: `‖x‖₁ / ‖kept‖₁` when both are at least 1e-7, else 1.
    static func factor(norms: [Double]) -> Float {
        guard norms[0] >= 1e-7, norms[1] >= 1e-7 else { return 1 }
        return Float(norms[0] / norms[1])
    }
}
