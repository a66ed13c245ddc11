import Foundation
import IR

/// What the planner needs to know about a PEFT LoRA adapter: the modules it changes and the whole tensors it
/// replaces (`modules_to_save`). Reads no tensor data.
public struct LoRAAdapterInfo: Sendable {
    /// The adapter directory, resolved (absolute, symlinks resolved).
    public var resolvedPath: String
    /// The modules LoRA layers are applied to, sorted by key.
    public var modules: [LoRAModule]
    /// Whole tensors replacing the base's (`modules_to_save`, and the base layers PEFT saves with an adapted
    /// embedding): base tensor name (`lm_head.weight`) → adapter tensor name.
    public var savedTensors: [String: String]
    /// Every adapter tensor's stored type, by name.
    public var tensorTypes: [String: TensorType]

    public init(resolvedPath: String, modules: [LoRAModule], savedTensors: [String: String],
                tensorTypes: [String: TensorType]) {
        self.resolvedPath = resolvedPath
        self.modules = modules
        self.savedTensors = savedTensors
        self.tensorTypes = tensorTypes
    }
}

/// A PEFT LoRA adapter directory opened for reading: `adapter_config.json` and `adapter_model.safetensors` (else
/// `adapter_model.bin`), as `PeftModel.from_pretrained` loads them. Its tensors are read like any checkpoint's (it is
/// the `CheckpointReader` of its weights file); `info` says which base tensors it changes and how.
public final class LoRAAdapter: CheckpointReader, @unchecked Sendable {
    /// The adapter's configuration file.
    public static let configFileName = "adapter_config.json"
    /// The adapter's weights, in the order PEFT looks for them.
    public static let weightFileNames = ["adapter_model.safetensors", "adapter_model.bin"]
    /// The prefix PEFT saves adapter tensor names with (`PeftModel` → `LoraModel` → the base model).
    public static let namePrefix = "base_model.model."

    public let directory: String
    /// The parsed `adapter_config.json`.
    public let config: LoRAConfig
    /// The modules and tensors the adapter changes.
    public let info: LoRAAdapterInfo
    private let weights: any CheckpointReader

    /// Opens the adapter in `directory` (`resolvedPath`: its absolute path, for `info`).
    /// - Throws: `CheckpointError.directoryNotFound`; `.invalidAdapter` naming the file when `adapter_config.json` or
    ///   the weights file is missing or malformed, when a module has A without B (or the reverse), or when shapes
    ///   disagree with the rank; `.unsupportedAdapter` for PEFT variants mergegraph does not apply (DoRA, convolution
    ///   layers, …); the weights file's own errors (`SafetensorsModel`, `PyTorchModel`).
    public init(directory: String, resolvedPath: String? = nil) throws(CheckpointError) {
        let names = try CheckpointFormat.entries(of: directory)
        let configPath = SafetensorsFiles.join(directory, Self.configFileName)
        guard names.contains(Self.configFileName), let bytes = FileManager.default.contents(atPath: configPath) else {
            throw .invalidAdapter(path: directory, detail: "it has no \(Self.configFileName) (a LoRA adapter after '+' "
                                  + "must be a PEFT adapter directory, as PeftModel.save_pretrained writes it)")
        }
        let config = try LoRAConfig(bytes: [UInt8](bytes), path: configPath)
        guard let file = Self.weightFileNames.first(where: names.contains) else {
            throw .invalidAdapter(path: directory, detail: "it has no \(Self.weightFileNames.joined(separator: " or "))")
        }
        let weights: any CheckpointReader = file.hasSuffix(".safetensors")
            ? try SafetensorsModel(directory: directory, files: [file])
            : try PyTorchModel(directory: directory, files: [file])
        self.directory = directory
        self.config = config
        self.weights = weights
        info = try Self.describe(weights, config: config, file: SafetensorsFiles.join(directory, file),
                                 resolvedPath: resolvedPath ?? directory)
    }

    public var filePaths: [String] { weights.filePaths }
    public var tensorNames: [String] { weights.tensorNames }
    public func tensor(_ name: String) -> StoredTensor? { weights.tensor(name) }
    public func readBytes(fileIndex: Int, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError) {
        try weights.readBytes(fileIndex: fileIndex, offset: offset, count: count, into: buffer)
    }

    // MARK: reading the tensor names

    /// The pieces of one module's LoRA layer as found in the file.
    private struct Pieces {
        var a: StoredTensor?
        var b: StoredTensor?
        var bias: StoredTensor?
        var embedding = false
    }

    /// Sorts the adapter's tensors into LoRA layers (`KEY.lora_A.weight`, `KEY.lora_B.weight`, `KEY.lora_B.bias`,
    /// `KEY.lora_embedding_A`, `KEY.lora_embedding_B`) and saved modules' tensors, keeping what PEFT would load: the
    /// layers on modules `config.targets`, the tensors of modules `config.savesModule`. Other tensors are unexpected
    /// keys to PEFT, which ignores them.
    private static func describe(_ weights: any CheckpointReader, config: LoRAConfig, file: String,
                                 resolvedPath: String) throws(CheckpointError) -> LoRAAdapterInfo {
        var pieces: [String: Pieces] = [:]
        var saved: [String: String] = [:]
        var baseLayers: [String: [(target: String, stored: String)]] = [:]
        var types: [String: TensorType] = [:]
        let suffixes: [(String, WritableKeyPath<Pieces, StoredTensor?>, Bool)] = [
            (".lora_A.weight", \.a, false), (".lora_B.weight", \.b, false), (".lora_B.bias", \.bias, false),
            (".lora_embedding_A", \.a, true), (".lora_embedding_B", \.b, true),
        ]
        for name in weights.tensorNames {
            guard let stored = weights.tensor(name) else { continue }
            types[name] = TensorType(dtype: stored.dtype, shape: stored.shape)
            let key = name.hasPrefix(namePrefix) ? String(name.dropFirst(namePrefix.count)) : name
            if let (suffix, path, embedding) = suffixes.first(where: { key.hasSuffix($0.0) }) {
                guard stored.dtype.isFloatingPoint else {
                    throw .invalidAdapter(path: file, detail: "tensor \(name) is \(stored.dtype.shortName), not a float")
                }
                let module = String(key.dropLast(suffix.count))
                pieces[module, default: Pieces()][keyPath: path] = stored
                if embedding { pieces[module]!.embedding = true }
                continue
            }
            if key.contains(".lora_") {
                throw .unsupportedAdapter(path: file, feature: "tensor \(name)")
            }
            // A module to save: `KEY.PARAM`, or `KEY.modules_to_save.PARAM` as older PEFT versions wrote it; or the
            // base layer of an adapted module (`KEY.base_layer.PARAM`, saved with an adapted embedding), which PEFT
            // loads over the base's.
            guard let dot = key.lastIndex(of: ".") else { continue }
            var module = String(key[..<dot])
            if module.hasSuffix(".modules_to_save") { module.removeLast(".modules_to_save".count) }
            if module.hasSuffix(".base_layer") {
                module.removeLast(".base_layer".count)
                baseLayers[module, default: []].append((module + key[dot...], name))
            } else if config.savesModule(module) {
                saved[module + key[dot...]] = name
            }
        }
        var modules: [LoRAModule] = []
        for (key, p) in pieces.sorted(by: { $0.key < $1.key }) {
            guard let a = p.a, let b = p.b else {
                let (have, missing) = p.a == nil ? ("B", "A") : ("A", "B")
                throw .invalidAdapter(path: file, detail: "module \(key) has lora_\(have) but no lora_\(missing)")
            }
            guard try config.targets(key, path: file) else { continue }
            for (target, stored) in baseLayers[key] ?? [] { saved[target] = stored }
            guard a.shape.count == 2, b.shape.count == 2 else {
                if a.shape.count == 4 || b.shape.count == 4 {
                    throw .unsupportedAdapter(path: file, feature: "convolution layers (module \(key))")
                }
                throw .invalidAdapter(path: file, detail: "module \(key): lora A \(a.shape) and B \(b.shape) must be matrices")
            }
            let rank = config.rank(of: key)
            guard a.shape[0] == rank, b.shape[1] == rank else {
                throw .invalidAdapter(path: file, detail: "module \(key) has rank \(rank) in \(LoRAAdapter.configFileName), "
                                      + "but A is \(a.shape) and B is \(b.shape)")
            }
            let transposed = p.embedding || config.fanInFanOut
            var bias: String?
            if config.loraBias, let stored = p.bias {
                guard stored.shape == [b.shape[0]] else {
                    throw .invalidAdapter(path: file, detail: "module \(key): lora_B.bias is \(stored.shape), B is \(b.shape)")
                }
                bias = stored.name
            }
            modules.append(LoRAModule(
                key: key, kind: p.embedding ? .embedding : .linear, a: a.name, b: b.name, bias: bias, rank: rank,
                scale: config.scale(of: key), transposed: transposed,
                weightShape: transposed ? [a.shape[1], b.shape[0]] : [b.shape[0], a.shape[1]]))
        }
        return LoRAAdapterInfo(resolvedPath: resolvedPath, modules: modules, savedTensors: saved, tensorTypes: types)
    }
}
