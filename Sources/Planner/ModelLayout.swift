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

/// How a checkpoint's tensors divide into embeddings before the layer stack, the layers, and tensors after it.
///
/// The rule (no per-architecture table): a tensor whose name has a `.N.` component is a layer tensor of
/// layer N; the others are "pre" when they are embeddings (name contains `embed`, `wte` or `wpe`) and "post" otherwise.
public struct ModelLayout: Sendable {
    public var preTensors: [String]
    /// `layers[i]`: the names of layer i's tensors, in file order.
    public var layers: [[String]]
    public var postTensors: [String]
    /// Layer-stack prefixes found (one for ordinary decoder-only models).
    public var layerPrefixes: [String]

    public init(tensorNames: [String]) {
        var pre: [String] = []
        var post: [String] = []
        var layers: [[String]] = []
        var prefixes: [String] = []
        for name in tensorNames {
            if let split = LayerTensorName(name) {
                while layers.count <= split.layer { layers.append([]) }
                layers[split.layer].append(name)
                if !prefixes.contains(split.prefix) { prefixes.append(split.prefix) }
            } else if ModelLayout.isEmbedding(name) {
                pre.append(name)
            } else {
                post.append(name)
            }
        }
        preTensors = pre
        self.layers = layers
        postTensors = post
        layerPrefixes = prefixes
    }

    public var layerCount: Int { layers.count }

    static func isEmbedding(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower.contains("embed") || lower.contains("wte") || lower.contains("wpe")
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
