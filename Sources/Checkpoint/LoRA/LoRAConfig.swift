import Foundation

/// The settings of a PEFT LoRA adapter that decide what it changes and by how much, read from its
/// `adapter_config.json` (PEFT 0.21 `LoraConfig`; unknown keys are ignored, as PEFT ignores them). Module keys are
/// module names inside the base model (`model.layers.0.self_attn.q_proj`), matched as PEFT matches them
/// (`check_target_module_exists`, `get_pattern_key`, `_set_trainable`).
public struct LoRAConfig: Sendable {
    /// Which modules a `target_modules` / `exclude_modules` entry selects: a list of names (a module is selected when
    /// its key is one of them or ends with `.NAME`), or one regular expression the whole key must match.
    public enum ModuleSelector: Sendable, Equatable {
        case names([String])
        case pattern(String)
    }

    /// `r`: the rank of modules without a `rank_pattern` entry.
    public var r: Int
    /// `lora_alpha` (PEFT's default 8).
    public var loraAlpha: Double
    /// `use_rslora`: scale by `lora_alpha / √r` instead of `lora_alpha / r`.
    public var useRSLoRA: Bool
    /// `target_modules` (nil: none given); `"all-linear"` is kept as a pattern and read as "every module the file has".
    public var targetModules: ModuleSelector?
    /// `exclude_modules` (nil: none).
    public var excludeModules: ModuleSelector?
    /// `fan_in_fan_out`: the base weights are stored `[in, out]` (GPT-2's `Conv1D`), so the update is transposed.
    public var fanInFanOut: Bool
    /// `modules_to_save`: modules whose whole weights the adapter file holds and which replace the base's.
    public var modulesToSave: [String]
    /// `rank_pattern`: per-module ranks, in the file's order.
    public var rankPattern: [(key: String, rank: Int)]
    /// `alpha_pattern`: per-module alphas, in the file's order.
    public var alphaPattern: [(key: String, alpha: Double)]
    /// `layers_to_transform`: only these layer indices are adapted (nil: all).
    public var layersToTransform: [Int]?
    /// `layers_pattern`: the names before the layer index that `layers_to_transform` reads (nil: any).
    public var layersPattern: [String]?
    /// `lora_bias`: the adapter trains a bias, added to the base's as `bias + scale · lora_B.bias`.
    public var loraBias: Bool

    /// Reads `adapter_config.json` at `path` (its bytes `bytes`).
    /// - Throws: `CheckpointError.invalidAdapter` for a file that is not a JSON object or a key of the wrong type
    ///   (naming the file and key); `.unsupportedAdapter` for a PEFT type other than LORA or a variant mergegraph
    ///   does not apply (`use_dora`, `target_parameters`, `trainable_token_indices`, `layer_replication`, activated
    ///   LoRA's `alora_invocation_tokens`).
    public init(bytes: [UInt8], path: String) throws(CheckpointError) {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch {
            throw .invalidAdapter(path: path, detail: "not valid JSON (\(error))")
        }
        guard case .object = json else { throw .invalidAdapter(path: path, detail: "not a JSON object") }
        func present(_ key: String) -> JSONValue? {
            guard let v = json[key], v != .null else { return nil }
            return v
        }
        func wrong(_ key: String, _ expected: String) -> CheckpointError {
            .invalidAdapter(path: path, detail: "'\(key)' must be \(expected), found \(json[key]?.serialized() ?? "nothing")")
        }
        if let type = present("peft_type")?.stringValue, type.uppercased() != "LORA" {
            throw .unsupportedAdapter(path: path, feature: "peft_type \(type)")
        }
        for (key, feature) in [("use_dora", "use_dora: true (DoRA)")] where present(key)?.boolValue == true {
            throw .unsupportedAdapter(path: path, feature: feature)
        }
        for key in ["target_parameters", "trainable_token_indices", "layer_replication", "alora_invocation_tokens"] {
            guard let v = present(key) else { continue }
            if case .array(let items) = v, items.isEmpty { continue }
            if case .object(let members) = v, members.isEmpty { continue }
            throw .unsupportedAdapter(path: path, feature: "\(key): \(v.serialized())")
        }
        guard let r = present("r")?.intValue, r >= 1 else { throw wrong("r", "a whole number of at least 1") }
        self.r = r
        if let alpha = present("lora_alpha") {
            guard case .number(let text) = alpha, let value = Double(text), value.isFinite else {
                throw wrong("lora_alpha", "a finite number")
            }
            loraAlpha = value
        } else {
            loraAlpha = 8
        }
        func bool(_ key: String) throws(CheckpointError) -> Bool {
            guard let v = present(key) else { return false }
            guard let b = v.boolValue else { throw wrong(key, "true or false") }
            return b
        }
        useRSLoRA = try bool("use_rslora")
        fanInFanOut = try bool("fan_in_fan_out")
        loraBias = try bool("lora_bias")
        func selector(_ key: String) throws(CheckpointError) -> ModuleSelector? {
            guard let v = present(key) else { return nil }
            if let pattern = v.stringValue { return .pattern(pattern) }
            guard case .array(let items) = v else { throw wrong(key, "a list of module names or a regular expression") }
            var names: [String] = []
            for item in items {
                guard let name = item.stringValue else { throw wrong(key, "a list of module names or a regular expression") }
                names.append(name)
            }
            return .names(names)
        }
        targetModules = try selector("target_modules")
        excludeModules = try selector("exclude_modules")
        switch try selector("modules_to_save") {
        case .names(let names): modulesToSave = names
        case .pattern(let name): modulesToSave = [name]
        case nil: modulesToSave = []
        }
        func numbers(_ key: String) throws(CheckpointError) -> [(String, Double)] {
            guard let v = present(key) else { return [] }
            guard case .object(let members) = v else { throw wrong(key, "an object of module names and numbers") }
            var result: [(String, Double)] = []
            for member in members {
                guard case .number(let text) = member.value, let x = Double(text), x.isFinite else {
                    throw wrong(key, "an object of module names and numbers")
                }
                result.append((member.key, x))
            }
            return result
        }
        var ranks: [(key: String, rank: Int)] = []
        for (key, value) in try numbers("rank_pattern") {
            guard value >= 1, value == value.rounded() else { throw wrong("rank_pattern", "whole numbers of at least 1") }
            ranks.append((key, Int(value)))
        }
        rankPattern = ranks
        alphaPattern = try numbers("alpha_pattern").map { (key: $0.0, alpha: $0.1) }
        if let layers = present("layers_to_transform") {
            if let one = layers.intValue {
                layersToTransform = [one]
            } else if case .array(let items) = layers {
                var indices: [Int] = []
                for item in items {
                    guard let i = item.intValue else { throw wrong("layers_to_transform", "a layer index or a list of them") }
                    indices.append(i)
                }
                layersToTransform = indices.isEmpty ? nil : indices
            } else {
                throw wrong("layers_to_transform", "a layer index or a list of them")
            }
        }
        switch try selector("layers_pattern") {
        case .names(let names): layersPattern = names.isEmpty ? nil : names
        case .pattern(let name): layersPattern = name.isEmpty ? nil : [name]
        case nil: layersPattern = nil
        }
    }

    /// Whether PEFT puts a LoRA layer on module `key` (`check_target_module_exists`): not excluded, not a module to
    /// save, and selected by `target_modules` (a name list also subject to `layers_to_transform`). With
    /// `target_modules: all-linear`, every module the adapter file holds a LoRA pair for is selected.
    /// - Throws: `CheckpointError.invalidAdapter` naming the key when a pattern is not a valid regular expression.
    public func targets(_ key: String, path: String) throws(CheckpointError) -> Bool {
        switch excludeModules {
        case .pattern(let p): if try Self.fullMatch(p, key, path: path) { return false }
        case .names(let names): if names.contains(where: { key == $0 || key.hasSuffix("." + $0) }) { return false }
        case nil: break
        }
        // PEFT keeps LoRA layers off modules to save and everything inside them: `(^|.*\.)NAME($|\..*)`.
        if modulesToSave.contains(where: { key == $0 || key.hasPrefix($0 + ".") || key.hasSuffix("." + $0)
                                           || key.contains("." + $0 + ".") }) {
            return false
        }
        switch targetModules {
        case nil: return false
        case .pattern(let p):
            return p == "all-linear" ? true : try Self.fullMatch(p, key, path: path)
        case .names(let names):
            if names.contains(key) { return true }
            guard names.contains(where: { key.hasSuffix("." + $0) }) else { return false }
            guard let layers = layersToTransform else { return true }
            guard let index = Self.layerIndex(of: key, patterns: layersPattern) else { return false }
            return layers.contains(index)
        }
    }

    /// Whether `key` is wrapped as a module to save, so that its whole weights come from the adapter (PEFT
    /// `_set_trainable`: the key ends with one of `modules_to_save`).
    public func savesModule(_ key: String) -> Bool {
        modulesToSave.contains { key.hasSuffix($0) }
    }

    /// The rank of module `key`: its `rank_pattern` entry (the first whose regex matches the end of the key after a
    /// dot, PEFT `get_pattern_key`), else `r`.
    public func rank(of key: String) -> Int {
        rankPattern.first { Self.matchesSuffix($0.key, key) }?.rank ?? r
    }

    /// The alpha of module `key`: its `alpha_pattern` entry, else `lora_alpha`.
    public func alpha(of key: String) -> Double {
        alphaPattern.first { Self.matchesSuffix($0.key, key) }?.alpha ?? loraAlpha
    }

    /// PEFT's `scaling` of module `key` (`LoraLayer.update_layer`): `alpha / r`, or `alpha / √r` with `use_rslora`,
    /// computed in double precision as Python does (PyTorch then multiplies the f32 product by it rounded to f32).
    public func scale(of key: String) -> Double {
        let r = Double(rank(of: key))
        return useRSLoRA ? alpha(of: key) / r.squareRoot() : alpha(of: key) / r
    }

    // MARK: matching

    /// Python `re.fullmatch(pattern, key)`.
    static func fullMatch(_ pattern: String, _ key: String, path: String) throws(CheckpointError) -> Bool {
        do {
            let regex = try Regex(pattern)
            return try regex.wholeMatch(in: key) != nil
        } catch {
            throw .invalidAdapter(path: path, detail: "'\(pattern)' is not a regular expression mergegraph reads (\(error))")
        }
    }

    /// PEFT `get_pattern_key`: `re.match(rf"(.*\.)?({pattern})$", key)`. A pattern that is not a valid regular
    /// expression matches only itself, as a whole trailing component.
    static func matchesSuffix(_ pattern: String, _ key: String) -> Bool {
        if let regex = try? Regex("(.*\\.)?(\(pattern))") { return (try? regex.wholeMatch(in: key)) != nil }
        return key == pattern || key.hasSuffix("." + pattern)
    }

    /// The layer index in `key` as PEFT reads it for `layers_to_transform`: the number after the first
    /// `NAME.` component (or one of `patterns`) followed by a dot.
    static func layerIndex(of key: String, patterns: [String]?) -> Int? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3 else { return nil }
        for k in 1..<(parts.count - 1) {
            guard let index = Int(parts[k]), parts[k].allSatisfy(\.isNumber) else { continue }
            if let patterns, !patterns.contains(parts[k - 1]) { continue }
            // PEFT's default pattern `.*?\.[^.]*\.(\d+)\.` needs a component before the one preceding the index.
            if patterns == nil && k < 2 { continue }
            return index
        }
        return nil
    }
}
