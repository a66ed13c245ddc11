import Checkpoint
import IR
import Parser

/// A checkpoint with a PEFT LoRA adapter applied (`base+adapter`), as the tensors mergekit 0.1.5 merges: its
/// `ModelReference.merged` loads the base with transformers in the LoRA merge dtype, applies the adapter with PEFT's
/// `merge_and_unload` and saves the result, which the merge then reads. Here the same tensors are IR: every float
/// tensor is the base's rounded to that dtype; a module the adapter targets adds its `lora_delta` (a linear layer's
/// f32 update unrounded, an embedding's rounded first, as PEFT's `Linear.merge` and `Embedding.merge` do), a trained
/// bias adds `scale · lora_B.bias`; a module to save (and the base layer PEFT saves with an adapted embedding) starts
/// from the adapter's tensor instead of the base's. Nothing is written anywhere.
final class AdaptedCheckpoint: TensorProvider {
    let displayName: String
    let base: CheckpointSource
    let adapter: LoRAAdapterInfo
    /// The adapter as written in the config, for notes and messages.
    let adapterName: String
    /// The adapter's index in `Graph.models`.
    let adapterModel: Int
    /// The dtype the base is loaded in and the adapter applied in.
    let dtype: DType
    private var moduleOfWeight: [String: LoRAModule] = [:]
    private var moduleOfBias: [String: LoRAModule] = [:]
    private var savedTensor: [String: String] = [:]

    /// `base` with `adapter` applied in `dtype` (nil: the base's `config.json` `dtype`/`torch_dtype`, else the dtype
    /// of its first float tensor, as transformers' `from_pretrained(dtype="auto")` loads it).
    /// - Throws: `PlanError.model` at `location` when the adapter targets a module the base does not have or whose
    ///   weight has another shape (an adapter trained for another model), or replaces a tensor of another shape.
    init(displayName: String, base: CheckpointSource, adapter: LoRAAdapterInfo, adapterName: String, adapterModel: Int,
         dtype: DType?, location: SourceLocation) throws(PlanError) {
        self.displayName = displayName
        self.base = base
        self.adapter = adapter
        self.adapterName = adapterName
        self.adapterModel = adapterModel
        self.dtype = dtype ?? Self.loadDType(of: base)
        func fail(_ message: String) -> PlanError {
            .model(location, path: displayName, "LoRA adapter '\(adapterName)' \(message); was it trained for '\(base.displayName)'?")
        }
        for module in adapter.modules {
            guard let weight = try base.storedName(of: module.key + ".weight", wrapper: nil), let type = base.type(of: weight) else {
                throw fail("changes module \(module.key), which '\(base.displayName)' does not have (no \(module.key).weight)")
            }
            guard type.shape == module.weightShape else {
                throw fail("changes \(weight) by a \(module.weightShape) update, but it is \(type.shape)")
            }
            guard type.dtype.isFloatingPoint else { throw fail("changes \(weight), which is \(type.dtype.shortName)") }
            moduleOfWeight[weight] = module
            guard module.bias != nil else { continue }
            guard let bias = try base.storedName(of: module.key + ".bias", wrapper: nil), base.type(of: bias) != nil else {
                throw fail("trains a bias of module \(module.key), which has none in '\(base.displayName)'")
            }
            moduleOfBias[bias] = module
        }
        for (name, stored) in adapter.savedTensors.sorted(by: { $0.key < $1.key }) {
            guard let target = try base.storedName(of: name, wrapper: nil), let type = base.type(of: target) else {
                throw fail("saves \(name), which '\(base.displayName)' does not have")
            }
            guard adapter.tensorTypes[stored]?.shape == type.shape else {
                throw fail("saves \(name) as \(adapter.tensorTypes[stored]?.shape ?? []), but it is \(type.shape)")
            }
            savedTensor[target] = stored
        }
    }

    /// transformers' `dtype="auto"`: `config.json`'s `dtype` (or older `torch_dtype`), else the dtype of the
    /// checkpoint's first float tensor (names in order), else f32.
    static func loadDType(of base: CheckpointSource) -> DType {
        for key in ["dtype", "torch_dtype"] {
            if let name = base.configJSON()?[key]?.stringValue, let d = DType(configName: name), d.isFloatingPoint {
                return d
            }
        }
        return base.tensorNames().lazy.compactMap { base.type(of: $0)?.dtype }.first(where: \.isFloatingPoint) ?? .f32
    }

    func tensorNames() -> [String] { base.tensorNames() }

    func type(of tensor: String) -> TensorType? {
        guard var type = base.type(of: tensor) else { return nil }
        if type.dtype.isFloatingPoint { type.dtype = dtype }
        return type
    }

    func value(of tensor: String, stage: String, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        guard let type = base.type(of: tensor), type.dtype.isFloatingPoint else {
            return try base.value(of: tensor, stage: stage, in: builder)
        }
        let result = TensorType(dtype: dtype, shape: type.shape)
        var value: ValueID
        if let stored = savedTensor[tensor], let storedType = adapter.tensorTypes[stored] {
            let load = builder.graph.add(.load(model: adapterModel, tensor: stored), type: storedType, stage: stage,
                                         note: "saved by LoRA adapter '\(adapterName)' in place of the base's")
            value = builder.graph.cast(load, to: dtype, stage: stage)
        } else {
            value = builder.graph.cast(try base.value(of: tensor, stage: stage, in: builder), to: dtype, stage: stage)
        }
        if let module = moduleOfWeight[tensor] {
            var delta = builder.graph.add(
                .loraDelta(model: adapterModel, a: module.a, b: module.b, rank: module.rank, scale: module.scale,
                           transposed: module.transposed),
                type: TensorType(dtype: .f32, shape: type.shape), stage: stage,
                note: "LoRA '\(adapterName)' on \(module.key)")
            if module.kind == .embedding { delta = builder.graph.cast(delta, to: dtype, stage: stage) }
            value = builder.graph.add(.add, [value, delta], type: result, stage: stage)
        }
        if let module = moduleOfBias[tensor], let bias = module.bias, let biasType = adapter.tensorTypes[bias] {
            let load = builder.graph.add(.load(model: adapterModel, tensor: bias), type: biasType, stage: stage)
            let scaled = builder.graph.add(.scale(module.scale), [builder.graph.cast(load, to: .f32, stage: stage)],
                                           type: TensorType(dtype: .f32, shape: type.shape), stage: stage,
                                           note: "LoRA '\(adapterName)' bias of \(module.key)")
            value = builder.graph.add(.add, [value, scaled], type: result, stage: stage)
        }
        return value
    }

    func configJSON() -> JSONValue? { base.configJSON() }

    /// mergekit reserializes the base's tokenizer when the merged copy has none.
    func donorDirectory() -> String? { base.donorDirectory() }

    func tokenizerFiles() -> TokenizerFiles? { base.tokenizerFiles() }

    func layout() -> ModelLayout { base.layout() }

    /// The first rows of a tensor the adapter leaves unchanged.
    /// - Throws: `PlanError.stage` for a tensor the adapter changes.
    func leadingRows(_ rows: Int, of tensor: String, stage: String, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        guard moduleOfWeight[tensor] == nil, moduleOfBias[tensor] == nil, savedTensor[tensor] == nil else {
            throw .stage(nil, "--unsafe-truncate-embeddings cannot cut tensor '\(tensor)' of '\(displayName)': "
                         + "LoRA adapter '\(adapterName)' changes it")
        }
        let rowsValue = try base.leadingRows(rows, of: tensor, stage: stage, in: builder)
        guard builder.graph[rowsValue].type.dtype.isFloatingPoint else { return rowsValue }
        return builder.graph.cast(rowsValue, to: dtype, stage: stage)
    }
}
