/// An element type of a tensor, as stored in safetensors files (the raw value is the header's `dtype` name) and
/// named in configs. Every dtype safetensors defines that torch can save: the floats merge (kernels compute in
/// f32 with f64 accumulators and round to the node's dtype); integers and BOOL are never merged arithmetically,
/// they are copied byte for byte (`isFloatingPoint`).
public enum DType: String, Hashable, Sendable, CaseIterable {
    /// IEEE binary32, 4 bytes.
    case f32 = "F32"
    /// IEEE binary16, 2 bytes.
    case f16 = "F16"
    /// bfloat16 (the upper half of a binary32), 2 bytes.
    case bf16 = "BF16"
    /// IEEE binary64, 8 bytes. Computed in f32 like every float (see README, "precision").
    case f64 = "F64"
    /// 8-bit float, 4 exponent bits (bias 7), 3 mantissa bits, no infinities, NaN = S.1111.111 (torch
    /// `float8_e4m3fn`), 1 byte.
    case f8e4m3 = "F8_E4M3"
    /// 8-bit float, 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like infinities and NaNs (torch
    /// `float8_e5m2`), 1 byte.
    case f8e5m2 = "F8_E5M2"
    /// Signed 64-bit integer (torch `int64`), 8 bytes; copied, never merged.
    case i64 = "I64"
    /// Signed 32-bit integer (torch `int32`), 4 bytes; copied, never merged.
    case i32 = "I32"
    /// Signed 16-bit integer (torch `int16`), 2 bytes; copied, never merged.
    case i16 = "I16"
    /// Signed 8-bit integer (torch `int8`), 1 byte; copied, never merged.
    case i8 = "I8"
    /// Unsigned 8-bit integer (torch `uint8`), 1 byte; copied, never merged.
    case u8 = "U8"
    /// Boolean, one byte per element holding 0 or 1 (torch `bool`); copied, never merged.
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .f8e4m3, .f8e5m2, .i8, .u8, .bool: return 1
        }
    }

    /// Whether the dtype holds floating-point numbers (torch `dtype.is_floating_point`): only these are merged;
    /// tensors of other dtypes are copied byte for byte from one input.
    public var isFloatingPoint: Bool {
        switch self {
        case .f64, .f32, .f16, .bf16, .f8e4m3, .f8e5m2: return true
        case .i64, .i32, .i16, .i8, .u8, .bool: return false
        }
    }

    /// The short name used in `--dump-ir` (`f32`, `f16`, `bf16`, `f64`, `f8_e4m3`, `i64`, `bool`, …).
    public var shortName: String { rawValue.lowercased() }

    /// The torch name, used in Hugging Face `config.json` (`torch_dtype`) and mergekit configs.
    public var torchName: String {
        switch self {
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        case .f64: return "float64"
        case .f8e4m3: return "float8_e4m3fn"
        case .f8e5m2: return "float8_e5m2"
        case .i64: return "int64"
        case .i32: return "int32"
        case .i16: return "int16"
        case .i8: return "int8"
        case .u8: return "uint8"
        case .bool: return "bool"
        }
    }

    /// Parses a config `dtype` / `out_dtype` name. mergekit 0.1.5 (`mergekit.common.dtype_from_name`) accepts
    /// `bfloat16`, `float16`, `float32`, `float64` (and `int64`, which its merge methods then reject as not
    /// floating point), each optionally prefixed with `torch.`; the short aliases `fp32`, `f32`, `float`, `fp16`,
    /// `f16`, `half`, `bf16`, `fp64`, `f64` and `double` are accepted too. Returns nil for anything else (the
    /// parser reports it); `int64` is returned as `.i64` so the parser can say why it is refused.
    public init?(configName: String) {
        var name = configName.lowercased()
        if name.hasPrefix("torch.") { name.removeFirst("torch.".count) }
        switch name {
        case "float32", "fp32", "f32", "float": self = .f32
        case "float16", "fp16", "f16", "half": self = .f16
        case "bfloat16", "bf16": self = .bf16
        case "float64", "fp64", "f64", "double": self = .f64
        case "int64": self = .i64
        default: return nil
        }
    }

    /// Parses a safetensors header dtype (`F64`, `F32`, `F16`, `BF16`, `F8_E4M3`, `F8_E5M2`, `I64`, `I32`, `I16`,
    /// `I8`, `U8`, `BOOL`); nil for the others (`U16`, `U32`, `U64`, `F8_E8M0`, `F4`, … that torch cannot save).
    public init?(safetensorsName: String) {
        self.init(rawValue: safetensorsName)
    }

    /// The type two float inputs of different types are computed in when no `dtype` is set, as
    /// `torch.promote_types` gives it (mergekit `promoted_dtype`): equal types stay; f64 with any float is f64;
    /// f16 with bf16, and either with f32, is f32. torch refuses to promote a float8 type with any other (mergekit
    /// then fails); mergegraph computes such a mix in f32, as if `dtype: float32` were set. Non-float dtypes are never
    /// promoted (those tensors are copied, see `NonFloatTensors` in the planner): mixed with anything else they
    /// give f32 here, and the planner reports the mismatch first.
    public static func promoted(_ a: DType, _ b: DType) -> DType {
        if a == b { return a }
        if a == .f64 || b == .f64 { return .f64 }
        return .f32
    }
}
