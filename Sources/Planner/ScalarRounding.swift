import Checkpoint
import IR

/// How mergekit 0.1.5 turns a config scalar into the number its tensor arithmetic uses. Each method's
/// declaration states its rule per parameter and applies it in its lowering (`LoweringContext.rounded`), so
/// `--dump-ir` shows the value the kernels compute with.
enum ScalarRounding {
    /// A tensor of the merge dtype holds the scalar (`torch.tensor(values, dtype=deltas.dtype)`): on bf16/f16
    /// merges it is rounded to that dtype (0.3 becomes 0.30078125 in bf16). On f32 merges the value is left
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
        case .mergeDType: return type.dtype == .f32 ? x : Double(DTypeConversion.round(Float(x), to: type.dtype))
        case .bf16Only: return type.dtype == .bf16 ? Double(DTypeConversion.round(Float(x), to: .bf16)) : x
        case .f32: return Double(Float(x))
        }
    }
}
