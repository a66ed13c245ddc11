/// One module a LoRA adapter changes: the base weight `KEY.weight` becomes `W + scale · (B · A)` (or its transpose),
/// the base bias `KEY.bias` becomes `bias + scale · lora_B.bias` when the adapter trains one (PEFT `Linear.merge`,
/// `Embedding.merge`).
public struct LoRAModule: Hashable, Sendable {
    /// What kind of PEFT layer the module is, which decides where the update is rounded.
    public enum Kind: Hashable, Sendable {
        /// `nn.Linear` or GPT-2's `Conv1D` (`lora_A.weight` `[r, in]`, `lora_B.weight` `[out, r]`): the f32 update is
        /// added to the weight unrounded (`weight.data += delta`).
        case linear
        /// `nn.Embedding` (`lora_embedding_A` `[r, vocabulary]`, `lora_embedding_B` `[dim, r]`): the update is
        /// transposed and rounded to the weight's dtype before it is added (`delta.to(orig_dtype)`).
        case embedding
    }

    /// The module's name in the base model (`model.layers.0.self_attn.q_proj`).
    public var key: String
    public var kind: Kind
    /// The adapter tensor holding A, `[rank, columns of B·A]`.
    public var a: String
    /// The adapter tensor holding B, `[rows of B·A, rank]`.
    public var b: String
    /// The adapter tensor holding `lora_B.bias` (`lora_bias: true`), if the adapter has one.
    public var bias: String?
    /// The rank: A's rows, B's columns.
    public var rank: Int
    /// PEFT's `scaling`: `lora_alpha / r`, or `lora_alpha / √r` with `use_rslora`.
    public var scale: Double
    /// Whether the update is `(B · A)ᵀ`: embeddings, and linear layers with `fan_in_fan_out` (weights `[in, out]`).
    public var transposed: Bool
    /// The shape of the base weight the update is added to, `[rows, columns]`.
    public var weightShape: [Int]

    public init(key: String, kind: Kind, a: String, b: String, bias: String?, rank: Int, scale: Double,
                transposed: Bool, weightShape: [Int]) {
        self.key = key
        self.kind = kind
        self.a = a
        self.b = b
        self.bias = bias
        self.rank = rank
        self.scale = scale
        self.transposed = transposed
        self.weightShape = weightShape
    }
}
