import Checkpoint
import IR

/// How mergekit 0.1.5 turns a config scalar into the number its tensor arithmetic uses. Each method's
/// declaration states its rule per parameter and applies it in its lowering (`LoweringContext.rounded`), so
/// `--dump-ir` shows the value the kernels compute with.
enum ScalarRounding {
    /// A tensor of the merge dtype holds the scalar (`torch.tensor(values, dtype=deltas.dtype)`): on bf16/f16
    /// merges it is rounded to that dtype (0.3 becomes 0.30078125 in bf16). On f32 (and f64) merges the value is left
    /// exact: the f32 kernels take it as f32 themselves where mergekit's f32 order matters (TIES), and elsewhere
    /// (f64 accumulation) the difference stays far inside the f32 tolerance.
    case mergeDType
    /// Only on bf16 merges: DARE's `torch.bernoulli(torch.full_like(tensor, density))` works in bf16 for bf16
    /// tensors and in f32 for f16 ones (`sparsify.bernoulli`).
    case bf16Only
    /// A float32 coefficient tensor (`batching._coefficient_dtype`: float32 unless the inputs are f64), as
    /// `linear_merge`'s weights.
    case f32
}

extension LoweringContext {
    /// `x` as mergekit uses it under `rule` in this tensor's merge dtype (`type.dtype`: `dtype:`, else the
    /// inputs' promoted dtype).
    func rounded(_ x: Double, _ rule: ScalarRounding) -> Double {
        switch rule {
        case .mergeDType:
            return type.dtype == .f32 || type.dtype == .f64 ? x : Double(DTypeConversion.round(Float(x), to: type.dtype))
        case .bf16Only: return type.dtype == .bf16 ? Double(DTypeConversion.round(Float(x), to: .bf16)) : x
        case .f32: return Double(Float(x))
        }
    }

    /// The per-input parameter `key`'s values for `inputs` (in that order), each `rounded(_, rule)`.
    ///
    /// Throws `invalidConfig` at the first value (where the config writes it) past the largest finite value of the
    /// dtype mergekit holds it in: the merge dtype under `.mergeDType` (float32 on f32 merges, whose kernels take the
    /// value as f32), float32 under `.f32`, bfloat16 or float32 under `.bf16Only`. mergekit would compute with ±infinity
    /// there (`torch.tensor(1e39, dtype=torch.float32)` is inf, float16's largest value is 65504) and write infinite or
    /// NaN values (docs/mergekit-differences.md). On float64 merges, which mergegraph computes in f32 (README), the
    /// bound is float32's.
    func finiteRounded(_ key: Parameter<Double>, of inputs: [Int], _ rule: ScalarRounding) throws(PlanError) -> [Double] {
        let values = self.values(key, of: inputs)
        let rounded = values.map { self.rounded($0, rule) }
        if let j = rounded.firstIndex(where: { !Float($0).isFinite }) {
            throw .invalidConfig(location(of: key, input: inputs[j]) ?? location,
                                 "\(key.name) \(values[j]) of tensor '\(output)' " + pastRange(rule))
        }
        return rounded
    }

    /// Throws `invalidConfig` at the shared parameter `key` when its value is past float32's largest value (a
    /// factor the kernels take as f32, as PyTorch takes a Python float scalar: `lambda`).
    func requireFiniteInF32(_ key: Parameter<Double>) throws(PlanError) {
        let value = self[key]
        guard !Float(value).isFinite else { return }
        throw .invalidConfig(location(of: key) ?? location,
                             "\(key.name) \(value) of tensor '\(output)' " + pastRange(.f32))
    }

    /// Why a value past its dtype's range under `rule` is refused, for an error message.
    private func pastRange(_ rule: ScalarRounding) -> String {
        if type.dtype == .f64 {
            return "is past the largest value of float32, in which mergegraph computes float64 merges (README: "
                + "\"dtype\"): the merge would compute with infinity"
        }
        let held: DType = switch rule {
        case .mergeDType: type.dtype
        case .bf16Only: type.dtype == .bf16 ? .bf16 : .f32
        case .f32: .f32
        }
        return "is past the largest value of \(held.torchName), which mergekit holds it in: the merge would compute "
            + "with infinity and write infinite or NaN values"
    }
}
