import Checkpoint

/// A tensor name split around its layer index: `model.layers.3.mlp.up_proj.weight` →
/// prefix `model.layers`, layer 3, suffix `mlp.up_proj.weight`.
public struct LayerTensorName: Hashable, Sendable {
    public var prefix: String
    public var layer: Int
    public var suffix: String

    /// Splits at the first `.N.` component, as mergekit's architecture inference does; nil for non-layer tensors.
    public init?(_ name: String) {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        for k in 1..<(parts.count - 1) {
            if let n = Int(parts[k]), n >= 0, parts[k].allSatisfy(\.isASCII), parts[k].allSatisfy(\.isNumber) {
                prefix = parts[..<k].joined(separator: ".")
                layer = n
                suffix = parts[(k + 1)...].joined(separator: ".")
                return
            }
        }
        return nil
    }

    /// The same tensor in another layer.
    public func name(atLayer index: Int) -> String { "\(prefix).\(index).\(suffix)" }
}

/// One stack of numbered layers (`model.layers.0` … `model.layers.N-1`): a prefix whose indices run from 0 without
/// a gap. Numbered modules that are not stacks (a projector's `mlp.0` and `mlp.2`, with the activation between
/// them unnumbered in the file) do not count.
public struct LayerStack: Hashable, Sendable {
    /// The name part before the index (`model.layers`, `visual.blocks`, `transformer.h`).
    public var prefix: String
    /// `layers[i]`: layer i's tensor names, in file order.
    public var layers: [[String]]

    /// Layers in the stack.
    public var count: Int { layers.count }
}

/// How a checkpoint's tensors divide into embeddings before the layer stacks, the stacks, the tensors after them,
/// and the buffers that are not parameters.
///
/// The rule (no per-architecture table of tensor names): a tensor whose name has a `.N.` component belongs to
/// layer N of the stack named by what comes before it, when that stack's indices run from 0 without a gap; other
/// tensors are "pre" when they are input embeddings (`isEmbedding`) and "post" otherwise.
/// Vision-language checkpoints have several stacks (a text decoder and a vision tower of other depths): each is
/// interpolated over its own depth, and the **primary** stack, the one `config.json`'s layer count describes (else
/// the one with most tensors), is the one `slices:` cut and restack. Buffers that are not parameters (rotary
/// `inv_freq`, GPT-2's `attn.bias`/`attn.masked_bias` masks, `position_ids`) are dropped, except where mergekit
/// 0.1.5's architecture for the model's `model_type` lists them (`keptBufferPolicy`): then they are copied from
/// one model, never merged arithmetically.
public struct ModelLayout: Sendable {
    public var preTensors: [String]
    public var stacks: [LayerStack]
    /// Index into `stacks` of the primary stack (nil without stacks).
    public var primary: Int?
    public var postTensors: [String]
    /// Buffers written as a copy of one model's (kept by mergekit's architecture for this model type).
    public var keptBuffers: [String]
    /// Buffers left out of the output, as mergekit leaves them out.
    public var droppedBuffers: [String]

    /// The layout of a checkpoint with tensors `tensorNames` (file order) and `config.json` `config`.
    public init(tensorNames: [String], config: JSONValue? = nil) {
        let kept = ModelLayout.keptBuffers(modelType: config?["model_type"]?.stringValue)
        var keptBuffers: [String] = []
        var dropped: [String] = []
        var byPrefix: [String: [Int: [String]]] = [:]
        var prefixOrder: [String] = []
        var others: [String] = []
        for name in tensorNames {
            if let kind = ModelLayout.buffer(name) {
                if kept.contains(kind) { keptBuffers.append(name) } else { dropped.append(name) }
                continue
            }
            guard let split = LayerTensorName(name) else { others.append(name); continue }
            if byPrefix[split.prefix] == nil { prefixOrder.append(split.prefix) }
            byPrefix[split.prefix, default: [:]][split.layer, default: []].append(name)
        }
        var stacks: [LayerStack] = []
        var notStacks = Set<String>()
        for prefix in prefixOrder {
            let layers = byPrefix[prefix]!
            if Set(layers.keys) == Set(0..<layers.count) {
                stacks.append(LayerStack(prefix: prefix, layers: (0..<layers.count).map { layers[$0]! }))
            } else {
                notStacks.insert(prefix)
            }
        }
        var pre: [String] = []
        var post: [String] = []
        for name in tensorNames where ModelLayout.buffer(name) == nil {
            if let split = LayerTensorName(name), !notStacks.contains(split.prefix) { continue }
            if ModelLayout.isEmbedding(name) { pre.append(name) } else { post.append(name) }
        }
        preTensors = pre
        postTensors = post
        self.stacks = stacks
        self.keptBuffers = keptBuffers
        droppedBuffers = dropped
        let declared = config.flatMap { c in ModelLayout.layerCountKey(in: c).flatMap { c[$0]?.intValue } }
        let sizes = stacks.map { $0.layers.reduce(0) { $0 + $1.count } }
        primary = stacks.indices.first { stacks[$0].count == declared }
            ?? stacks.indices.first { sizes[$0] == sizes.max() }
    }

    /// The primary stack's layers (empty without stacks).
    public var layers: [[String]] { primary.map { stacks[$0].layers } ?? [] }

    /// Layers of the primary stack.
    public var layerCount: Int { layers.count }

    /// Every stack's prefix, in file order.
    public var layerPrefixes: [String] { stacks.map(\.prefix) }

    /// An input embedding (before the stacks): the name contains `embed`, `wte` or `wpe`, and it is not an output
    /// head (`embed_out`, `lm_head`).
    static func isEmbedding(_ name: String) -> Bool {
        let lower = name.lowercased()
        guard !lower.contains("embed_out"), !lower.contains("lm_head") else { return false }
        return lower.contains("embed") || lower.contains("wte") || lower.contains("wpe")
    }

    /// The kinds of non-parameter buffers.
    enum Buffer: Hashable {
        /// Rotary embeddings' `inv_freq`.
        case inverseFrequencies
        /// Causal-attention masks: GPT-2's `attn.bias`/`attn.masked_bias`, GPT-NeoX's `attention.bias`/`masked_bias`.
        case attentionMask
        /// BERT's `position_ids`.
        case positionIDs
    }

    /// The buffer kind `name` is, or nil for a parameter.
    static func buffer(_ name: String) -> Buffer? {
        let parts = name.split(separator: ".")
        guard let last = parts.last else { return nil }
        switch last {
        case "inv_freq": return .inverseFrequencies
        case "masked_bias": return .attentionMask
        case "position_ids": return .positionIDs
        case "bias" where parts.count >= 2 && (parts[parts.count - 2] == "attn" || parts[parts.count - 2] == "attention"):
            return .attentionMask
        default: return nil
        }
    }

    /// The buffers mergekit 0.1.5's architecture for `modelType` writes (GPT-NeoX its masks and rotary frequencies,
    /// Phi-1 its rotary frequencies, BERT and RoBERTa `position_ids`); every other model type drops them all.
    static func keptBuffers(modelType: String?) -> Set<Buffer> {
        switch modelType {
        case "gpt_neox": return [.inverseFrequencies, .attentionMask]
        case "phi-msft", "mixformer-sequential": return [.inverseFrequencies]
        case "bert", "roberta": return [.positionIDs]
        default: return []
        }
    }

    /// The `config.json` key that holds the layer count: a top-level integer key named like
    /// `num_hidden_layers`, `n_layer`, `num_layers` or `n_layers`.
    public static func layerCountKey(in config: JSONValue) -> String? {
        let candidates = config.keys.filter { key in
            let parts = key.split(separator: "_")
            guard let first = parts.first, first == "num" || first == "n", let last = parts.last else { return false }
            return (last == "layer" || last == "layers") && parts.count <= 3 && config[key]?.intValue != nil
                && (parts.count == 2 || parts[1] == "hidden")
        }
        return candidates.first
    }
}
