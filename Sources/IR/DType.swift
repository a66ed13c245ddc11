/// An element type of a tensor, as stored in safetensors files and named in configs.
public enum DType: String, Hashable, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        }
    }

    /// The short name used in `--dump-ir` (`f32`, `f16`, `bf16`).
    public var shortName: String { rawValue.lowercased() }

    /// The name used in Hugging Face `config.json` and mergekit configs.
    public var torchName: String {
        switch self {
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        }
    }

    /// Parses a config dtype name as mergekit accepts it (`float32`, `bfloat16`, `fp16`, …).
    public init?(configName: String) {
        switch configName.lowercased() {
        case "float32", "fp32", "f32", "float": self = .f32
        case "float16", "fp16", "f16", "half": self = .f16
        case "bfloat16", "bf16": self = .bf16
        default: return nil
        }
    }

    /// Parses a safetensors header dtype (`F32`, `F16`, `BF16`).
    public init?(safetensorsName: String) {
        self.init(rawValue: safetensorsName)
    }

    /// The type two inputs of different types are computed in when no `dtype` is set (torch promotion).
    public static func promoted(_ a: DType, _ b: DType) -> DType {
        if a == b { return a }
        return .f32
    }
}
