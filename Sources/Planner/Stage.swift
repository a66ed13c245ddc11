import Checkpoint
import IR
import Parser

/// One merge config (one YAML document) compiled to per-tensor recipes; lowered to IR on demand,
/// so a stage used by another stage contributes only the tensors that are asked for.
final class Stage: TensorProvider {
    let config: MergeConfig
    let label: String
    /// The merge method's declaration and lowering.
    let method: any MergeMethod
    /// `method`'s declaration (its name, parameters, base policy and input counts).
    var spec: MethodSpec { method.spec }
    /// The seed randomized methods put on their ops.
    let randomSeed: UInt64
    /// Vocabulary-axis inputs with extra rows keep the smallest one's rows (`--unsafe-truncate-embeddings`).
    let truncateEmbeddings: Bool
    private(set) var recipes: [TensorRecipe] = []
    private(set) var warnings: [String] = []
    private var recipeIndex: [String: Int] = [:]
    private var memo: [String: ValueID] = [:]
    private var outputTypes: [String: TensorType] = [:]
    private let slices: [NormalizedSlice]
    private let donor: TensorProvider

    var displayName: String { label }

    /// - Parameter strict: a parameter the merge method does not use is an error rather than a warning (`--strict`).
    init(config: MergeConfig, label: String, randomSeed: UInt64 = 0, truncateEmbeddings: Bool = false,
         strict: Bool = false, resolve: (ModelReference) throws(PlanError) -> TensorProvider) throws(PlanError) {
        self.config = config
        self.label = label
        self.randomSeed = randomSeed
        self.truncateEmbeddings = truncateEmbeddings
        if let key = config.unsupportedKeys.first { throw .notImplemented(key.location, key.value) }
        guard let method = MethodRegistry.method(named: config.mergeMethod.value) else {
            throw .unknownMethod(config.mergeMethod.location, config.mergeMethod.value,
                                 known: MethodRegistry.specs.map(\.name))
        }
        self.method = method
        let spec = method.spec
        let slices = try Stage.normalize(config, spec: spec, resolve: resolve)
        self.slices = slices
        donor = config.baseModel.flatMap { ref in slices.flatMap(\.sources).first { $0.ref == ref }?.provider }
            ?? slices[0].sources[0].provider
        if let settings = config.tokenizer {
            vocabulary = try Stage.alignment(settings, config: config, slices: slices)
        }
        try buildRecipes()
        let unused = unusedParameters()
        if strict, let first = unused.first {
            throw .invalidConfig(first.location, first.message + "; --strict makes this an error")
        }
        warnings = unused.map { "\($0.location): warning: \($0.message)" } + truncations.map {
            "\(config.mergeMethod.location): warning: UNSAFE vocabulary truncation (--unsafe-truncate-embeddings): \($0); "
                + "this assumes identical token ids in the rows kept"
        } + (vocabulary?.warnings ?? [])
    }

    /// The output vocabulary of `settings`, built from the stage's models: the base model (else the first) first,
    /// then every other input in the order written (mergekit's `referenced_models()`).
    /// - Throws: `PlanError.notImplemented` when an input is another stage's output (its tokenizer is not on disk).
    private static func alignment(_ settings: TokenizerSettings, config: MergeConfig,
                                  slices: [NormalizedSlice]) throws(PlanError) -> VocabularyAlignment {
        let sources = slices.flatMap(\.sources)
        var models: [(ref: ModelReference, source: CheckpointSource)] = []
        let ordered = (config.baseModel.flatMap { base in sources.first { $0.ref == base } }.map { [$0] } ?? []) + sources
        for source in ordered where !models.contains(where: { $0.ref == source.ref }) {
            guard let checkpoint = source.provider as? CheckpointSource else {
                throw .notImplemented(settings.location, "a tokenizer setting in a merge of another stage's output "
                                      + "('\(source.ref.path)'); set it in the stage that reads the checkpoints")
            }
            models.append((source.ref, checkpoint))
        }
        return try VocabularyAlignment(settings: settings, models: models, base: 0)
    }

    // MARK: normalization and validation

    private static func normalize(_ config: MergeConfig, spec: MethodSpec,
                                  resolve: (ModelReference) throws(PlanError) -> TensorProvider) throws(PlanError) -> [NormalizedSlice] {
        var slices: [NormalizedSlice] = []
        switch config.inputs {
        case .models(let models):
            guard !models.isEmpty else { throw .invalidConfig(config.inputsLocation, "no models to merge") }
            var sources: [SliceSource] = []
            for m in models {
                let provider = try resolve(m.model)
                let n = try provider.layout().layerCount
                sources.append(SliceSource(ref: m.model, provider: provider, start: 0, end: n,
                                           parameters: m.parameters, location: m.location))
            }
            if let base = config.baseModel, !models.contains(where: { $0.model == base }) {
                let provider = try resolve(base)
                sources.append(SliceSource(ref: base, provider: provider, start: 0, end: try provider.layout().layerCount,
                                           parameters: ParameterMap(), location: base.location))
            }
            slices.append(NormalizedSlice(sources: sources, baseIndex: nil, parameters: ParameterMap(),
                                          location: config.inputsLocation))
        case .slices(let outputSlices):
            guard !outputSlices.isEmpty else { throw .invalidConfig(config.inputsLocation, "no slices to merge") }
            for s in outputSlices {
                var sources: [SliceSource] = []
                for src in s.sources {
                    let provider = try resolve(src.model)
                    let n = try provider.layout().layerCount
                    let r = src.layerRange
                    guard r.end <= n else {
                        throw .invalidConfig(r.location, "layer_range [\(r.start), \(r.end)] is out of bounds: model '\(src.model.path)' has \(n) layers")
                    }
                    sources.append(SliceSource(ref: src.model, provider: provider, start: r.start, end: r.end,
                                               parameters: src.parameters, location: src.location))
                }
                slices.append(NormalizedSlice(sources: sources, baseIndex: nil, parameters: s.parameters,
                                              location: s.location))
                if let base = s.baseModel { slices[slices.count - 1].baseIndex = sources.firstIndex { $0.ref == base } }
                slices[slices.count - 1].sliceBase = s.baseModel
            }
            // Empty ranges everywhere would write a model without layers although its inputs have some.
            if let first = outputSlices.first?.sources.first, slices.allSatisfy({ $0.layerCount == 0 }),
               slices.contains(where: { $0.sources.contains { (try? $0.provider.layout().layerCount) ?? 0 > 0 } }) {
                let r = first.layerRange
                throw .invalidConfig(r.location, "layer_range [\(r.start), \(r.end)] selects no layers, and neither does any "
                                     + "other slice: the merged model would have no layers")
            }
        }
        for i in slices.indices {
            try validate(&slices[i], config: config, spec: spec,
                         sliceBase: { if case .slices(let s) = config.inputs { return s[i].baseModel } else { return nil } }())
        }
        return slices
    }

    private static func validate(_ slice: inout NormalizedSlice, config: MergeConfig, spec: MethodSpec,
                                 sliceBase: ModelReference?) throws(PlanError) {
        var seen: [ModelReference] = []
        for s in slice.sources {
            if seen.contains(s.ref) {
                throw .invalidConfig(s.location, "model '\(s.ref.path)' is listed twice as an input of the same merge")
            }
            seen.append(s.ref)
            if s.end - s.start != slice.layerCount {
                throw .invalidConfig(s.location, "all sources of a slice must have the same number of layers "
                                     + "(\(slice.layerCount) in the first, \(s.end - s.start) here)")
            }
        }
        let base = spec.base == .ignored ? nil : sliceBase ?? config.baseModel
        if let base {
            guard let index = slice.sources.firstIndex(where: { $0.ref == base }) else {
                throw .invalidConfig(base.location, "base_model '\(base.path)' is not one of this slice's sources")
            }
            slice.baseIndex = index
        } else if spec.base == .required {
            throw .invalidConfig(config.mergeMethod.location, "merge method '\(spec.name)' requires base_model")
        } else {
            slice.baseIndex = nil
        }
        let count = slice.sources.count
        if count < spec.minInputs || count > (spec.maxInputs ?? Int.max) {
            throw .invalidConfig(slice.location, "merge method '\(spec.name)' takes "
                                 + expectedCount(spec.minInputs, spec.maxInputs)
                                 + ((spec.maxInputs ?? spec.minInputs) == 1 ? " input model" : " input models")
                                 + " (base included), found \(count)")
        }
        let nonBase = count - (slice.baseIndex == nil ? 0 : 1)
        if spec.minNonBase != nil || spec.maxNonBase != nil,
           nonBase < (spec.minNonBase ?? 0) || nonBase > (spec.maxNonBase ?? Int.max) {
            throw .invalidConfig(slice.location, "merge method '\(spec.name)' takes "
                                 + expectedCount(spec.minNonBase ?? 0, spec.maxNonBase)
                                 + ((spec.maxNonBase ?? spec.minNonBase) == 1 ? " input model" : " input models")
                                 + " besides the base, found \(nonBase)")
        }
    }

    /// "exactly 2", "at most 1", "at least 3", "between 2 and 4".
    static func expectedCount(_ low: Int, _ high: Int?) -> String {
        guard let high else { return "at least \(low)" }
        if low == high { return "exactly \(low)" }
        return low <= 1 ? "at most \(high)" : "between \(low) and \(high)"
    }

    // MARK: recipes

    /// The output tensors, in order: the first slice's embeddings, every layer stack (the primary one cut and
    /// stacked by the slices, the others whole over their own depth), the last slice's tensors after the stacks
    /// (with an output head another input has when the first ties it to its embedding), and the buffers kept as
    /// copies. Names follow the first input, wrapped in `wrapper.` when another input uses that wrapper.
    private func buildRecipes() throws(PlanError) {
        let first = slices[0]
        let firstLayout = try first.sources[0].provider.layout()
        wrapper = try Stage.wrapperPrefix(of: first.sources[0].provider,
                                          among: slices.flatMap(\.sources).dropFirst().map(\.provider))
        try Self.requireSurroundingTensors(first, after: false, wrapper: wrapper)
        for name in firstLayout.preTensors {
            try addRecipe(output: name, slice: first, inputNames: first.sources.map { _ in name }, t: 0, position: nil)
        }
        var outLayer = 0
        for (s, stack) in firstLayout.stacks.enumerated() {
            guard s == firstLayout.primary else {
                try addStack(stack.prefix, slice: first)
                continue
            }
            for slice in slices {
                let layout = try slice.sources[0].provider.layout()
                let n = slice.layerCount
                for offset in 0..<n {
                    try Self.requireLayerComplete(slice, offset: offset)
                    let t = n > 1 ? Double(offset) / Double(n - 1) : 1
                    for name in layout.layers[slice.sources[0].start + offset] {
                        guard let split = LayerTensorName(name) else { continue }
                        let inputs = slice.sources.map { split.name(atLayer: $0.start + offset) }
                        try addRecipe(output: split.name(atLayer: outLayer), slice: slice, inputNames: inputs, t: t,
                                      position: "slice layer \(offset + 1)/\(n), gradient position \(formatAttribute(t))")
                    }
                    outLayer += 1
                }
            }
        }
        let last = slices[slices.count - 1]
        try Self.requireSurroundingTensors(last, after: true, wrapper: wrapper)
        let lastLayout = try last.sources[0].provider.layout()
        var post = lastLayout.postTensors
        // An output head the first input ties to its embedding but another input has (mergekit's optional
        // `lm_head.weight` with `tied_names`).
        for source in last.sources.dropFirst() {
            for name in try source.provider.layout().postTensors where !post.contains(name) {
                guard try last.sources[0].provider.storedName(of: name, wrapper: wrapper) == nil,
                      try last.sources[0].provider.tiedEmbedding(for: name, wrapper: wrapper) != nil else { continue }
                post.append(name)
            }
        }
        for name in post {
            try addRecipe(output: name, slice: last, inputNames: last.sources.map { _ in name }, t: 0, position: nil)
        }
        // No head written because the last slice's models tie it (a frankenmerge ending in a tied model): the output
        // ties it too, whatever the config it starts from says.
        for name in firstLayout.postTensors where !post.contains(name) {
            var tied = true
            for source in last.sources {
                let stored = try source.provider.storedName(of: name, wrapper: wrapper)
                let standIn = try source.provider.tiedEmbedding(for: name, wrapper: wrapper)
                tied = tied && stored == nil && standIn != nil
            }
            tiesHead = tiesHead || tied
        }
        for name in firstLayout.keptBuffers {
            try addRecipe(output: name, slice: first, inputNames: first.sources.map { _ in name }, t: 0, position: nil,
                          copyFrom: first.baseIndex ?? 0)
        }
        layerTotal = outLayer
    }

    private var layerTotal = 0
    /// A wrapper component the output names get (see `wrapperPrefix`).
    private var wrapper: String?
    /// Whether an output head merges a real head with a tied input's embedding (then the output's config unties them).
    private var untiesHead = false
    /// Whether the output has no head because the models it would come from tie it (then the output's config ties).
    private var tiesHead = false
    /// What `--unsafe-truncate-embeddings` cut, one line per tensor (reported as warnings).
    private var truncations: [String] = []
    /// The output vocabulary and the alignment of the vocabulary-axis tensors to it, when the config sets
    /// `tokenizer_source` or `tokenizer`.
    private(set) var vocabulary: VocabularyAlignment?

    /// Whether `name`'s inputs differ only along a vocabulary axis (dimension 0 of an input embedding or an output
    /// head, or of a tensor whose rows are each model's `vocab_size`), which mergekit's architectures mark with
    /// `vocabulary_axis: 0`.
    private func isVocabularyAxis(_ name: String, shapes: [(model: String, tensor: String, shape: [Int])],
                                  sources: [SliceSource]) throws(PlanError) -> Bool {
        guard shapes.allSatisfy({ $0.shape.count >= 1 && $0.shape.dropFirst() == shapes[0].shape.dropFirst() }) else {
            return false
        }
        let lower = name.lowercased()
        if ModelLayout.isEmbedding(name) && !lower.contains("position") && !lower.contains("wpe") { return true }
        if lower.contains("lm_head") || lower.contains("embed_out") { return true }
        // Rows equal to `vocab_size` mark a vocabulary tensor only where the row counts differ (equal shapes could be
        // a coincidence, and aligning such a tensor would scramble it).
        guard shapes.contains(where: { $0.shape != shapes[0].shape }) else { return false }
        for (source, shape) in zip(sources, shapes) {
            guard try source.provider.configJSON()?["vocab_size"]?.intValue == shape.shape[0] else { return false }
        }
        return true
    }

    /// A layer stack other than the primary one (a vision tower beside a text decoder): merged whole, layer by
    /// layer, each source's same layer, the gradient position running over this stack's own depth.
    private func addStack(_ prefix: String, slice: NormalizedSlice) throws(PlanError) {
        var counts: [Int] = []
        for source in slice.sources {
            counts.append(try source.provider.layout().stacks.first { $0.prefix == prefix }?.count ?? 0)
        }
        guard let n = counts.first, counts.allSatisfy({ $0 == n }) else {
            throw .invalidConfig(slice.location, "layer stack '\(prefix)' has "
                                 + zip(slice.sources, counts).map { "\($1) layers in '\($0.ref.path)'" }
                                    .joined(separator: ", ") + "; every input needs the same depth")
        }
        let stack = try slice.sources[0].provider.layout().stacks.first { $0.prefix == prefix }!
        for (offset, names) in stack.layers.enumerated() {
            try Self.requireLayerComplete(slice, offset: offset, stack: prefix)
            let t = n > 1 ? Double(offset) / Double(n - 1) : 1
            for name in names {
                try addRecipe(output: name, slice: slice, inputNames: slice.sources.map { _ in name }, t: t,
                              position: "\(prefix) layer \(offset + 1)/\(n), gradient position \(formatAttribute(t))")
            }
        }
    }

    /// Throws `missingTensor` for the slice's first input when its layer `start + offset` of its primary stack (or
    /// layer `offset` of its stack `prefix`, merged whole: a vision tower beside a text decoder) lacks a tensor another
    /// input has in its own layer there and the first input has in another layer of that stack: a tensor
    /// missing from that checkpoint, not a difference of architecture. The output's names follow the first input,
    /// so the merged model would lack that tensor, silently; mergekit, whose architecture lists the tensor, stops on
    /// the model that lacks it. (A later input lacking a tensor the first has is `addRecipe`'s `missingTensor`.)
    /// Layers are compared by the names after their layer index, so a wrapper (`transformer.`) does not count.
    static func requireLayerComplete(_ slice: NormalizedSlice, offset: Int, stack prefix: String? = nil) throws(PlanError) {
        guard slice.sources.count > 1 else { return }
        /// The layers of `source`'s primary stack, or of its stack `prefix` (none when it has no such stack).
        func stackLayers(of source: SliceSource) throws(PlanError) -> [[String]] {
            let layout = try source.provider.layout()
            guard let prefix else { return layout.layers }
            return layout.stacks.first { $0.prefix == prefix }?.layers ?? []
        }
        // The primary stack is cut by the slices (each source from its `start`); another stack is merged whole.
        func index(_ source: SliceSource) -> Int { prefix == nil ? source.start + offset : offset }
        let first = slice.sources[0], layers = try stackLayers(of: first)
        let layer = index(first)
        guard layers.indices.contains(layer) else { return }
        let own = Set(layers[layer].compactMap { LayerTensorName($0)?.suffix })
        var elsewhere: Set<String>?
        for source in slice.sources.dropFirst() {
            let theirs = try stackLayers(of: source)
            guard theirs.indices.contains(index(source)) else { continue }
            for name in theirs[index(source)] {
                guard let suffix = LayerTensorName(name)?.suffix, !own.contains(suffix) else { continue }
                let others = elsewhere ?? Set(layers.enumerated().filter { $0.offset != layer }
                    .flatMap { $0.element.compactMap { LayerTensorName($0)?.suffix } })
                elsewhere = others
                guard others.contains(suffix), let sample = layers[layer].first.flatMap(LayerTensorName.init) else {
                    continue
                }
                throw .missingTensor(tensor: "\(sample.prefix).\(layer).\(suffix)", model: first.ref.path, first.location)
            }
        }
    }

    /// Throws `missingTensor` for the slice's first input when another input of the same architecture (`config.json`'s
    /// `architectures` and `model_type` equal) has a tensor outside the layer stacks — before them, or with `after`
    /// after them — that the first input lacks, under any name `storedName` accepts and with no tied stand-in (an
    /// output head tied to the embedding): a tensor missing from that checkpoint (a final norm), which the output,
    /// named after the first input, would lack, silently; mergekit, whose architecture lists it, stops on that model.
    /// Inputs of other architectures are not compared: a tensor only they have (a classification head) is theirs.
    static func requireSurroundingTensors(_ slice: NormalizedSlice, after: Bool, wrapper: String?) throws(PlanError) {
        guard slice.sources.count > 1 else { return }
        let first = slice.sources[0], config = try first.provider.configJSON()
        guard let architectures = config?["architectures"], let modelType = config?["model_type"] else { return }
        let firstLayout = try first.provider.layout()
        let mine = after ? firstLayout.postTensors : firstLayout.preTensors
        for source in slice.sources.dropFirst() {
            let theirs = try source.provider.configJSON()
            guard theirs?["architectures"] == architectures, theirs?["model_type"] == modelType else { continue }
            // What `addRecipe` reads from this input for the first input's names (`storedName` both ways: GPT-2's
            // `transformer.wpe.weight` is the `wpe.weight` of a checkpoint saved from the base model).
            var matched = Set<String>()
            for name in mine {
                if let stored = try source.provider.storedName(of: name, wrapper: wrapper) { matched.insert(stored) }
            }
            let layout = try source.provider.layout()
            for name in after ? layout.postTensors : layout.preTensors where !matched.contains(name) {
                guard try first.provider.storedName(of: name, wrapper: wrapper) == nil,
                      try first.provider.tiedEmbedding(for: name, wrapper: wrapper) == nil else { continue }
                throw .missingTensor(tensor: name, model: first.ref.path, first.location)
            }
        }
    }

    /// The wrapper component (`transformer`) another input puts before most of `first`'s tensor names, which the
    /// output names then get too (mergekit writes its architecture's canonical names; a checkpoint saved from the
    /// base model lacks the wrapper its LM-head model adds); nil when no input does.
    static func wrapperPrefix(of first: TensorProvider, among others: [TensorProvider]) throws(PlanError) -> String? {
        let names = Set(try first.tensorNames())
        for other in others {
            let otherNames = Set(try other.tensorNames())
            var votes: [String: Int] = [:]
            for name in otherNames {
                guard let dot = name.firstIndex(of: ".") else { continue }
                let rest = String(name[name.index(after: dot)...])
                if names.contains(rest), !otherNames.contains(rest), !names.contains(name) {
                    votes[String(name[..<dot]), default: 0] += 1
                }
            }
            if let (prefix, count) = votes.max(by: { $0.value < $1.value }), count * 2 >= names.count {
                return prefix
            }
        }
        return nil
    }

    private func addRecipe(output canonical: String, slice: NormalizedSlice, inputNames: [String], t: Double,
                           position: String?, copyFrom: Int? = nil) throws(PlanError) {
        var inputs: [RecipeInput] = []
        var shapes: [(model: String, tensor: String, shape: [Int])] = []
        var dtypes: [DType] = []
        var wrapped = false
        var standsIn = false
        for (source, name) in zip(slice.sources, inputNames) {
            var stored = try source.provider.storedName(of: name, wrapper: wrapper)
            if stored == nil {
                stored = try source.provider.tiedEmbedding(for: name, wrapper: wrapper)
                standsIn = standsIn || stored != nil
            }
            guard let stored, let type = try source.provider.type(of: stored) else {
                throw .missingTensor(tensor: name, model: source.ref.path, source.location)
            }
            if let wrapper, stored == wrapper + "." + name { wrapped = true }
            shapes.append((source.ref.path, stored, type.shape))
            dtypes.append(type.dtype)
            inputs.append(RecipeInput(provider: source.provider, tensor: stored, parameters: ResolvedParameters(),
                                      location: source.location))
        }
        let output = wrapped ? wrapper! + "." + canonical : canonical
        // A head merged from one input's head and another's embedding is a tensor of its own.
        if standsIn, copyFrom == nil, inputs.contains(where: { $0.tensor == canonical || $0.tensor == output }) {
            untiesHead = true
        }
        if let vocabulary, copyFrom == nil, try isVocabularyAxis(output, shapes: shapes, sources: slice.sources) {
            // mergekit's `PermutedVocabulary`: every input's rows rearranged into the output vocabulary.
            var aligned: [VocabularyInput] = []
            for (i, source) in slice.sources.enumerated() {
                guard let checkpoint = source.provider as? CheckpointSource,
                      let type = checkpoint.type(of: inputs[i].tensor) else {
                    throw .notImplemented(source.location, "aligning '\(output)' of another stage's output "
                                          + "('\(source.ref.path)') to a vocabulary")
                }
                aligned.append(VocabularyInput(ref: source.ref, source: checkpoint, tensor: inputs[i].tensor, type: type))
            }
            let base = (slice.sliceBase ?? config.baseModel).flatMap { b in slice.sources.firstIndex { $0.ref == b } }
            let gathers = try vocabulary.gathers(of: output, inputs: aligned, base: base)
            for i in inputs.indices {
                inputs[i].gather = gathers[i]
                shapes[i].shape[0] = vocabulary.rowCount
            }
        } else if shapes.contains(where: { $0.shape != shapes[0].shape }) {
            guard try isVocabularyAxis(output, shapes: shapes, sources: slice.sources) else {
                // At the first input whose shape differs from the first input's (a `models:` list's slice is the
                // whole document).
                let differing = shapes.firstIndex { $0.shape != shapes[0].shape } ?? 0
                throw .shapeMismatch(slice.sources[differing].location, tensor: output, inputs: shapes)
            }
            guard truncateEmbeddings else {
                // At the first input whose row count differs from the first input's, as for other shapes.
                let differing = shapes.firstIndex { $0.shape[0] != shapes[0].shape[0] } ?? 0
                throw .vocabularyMismatch(slice.sources[differing].location, tensor: output,
                                          inputs: shapes.map { ($0.model, $0.shape[0]) })
            }
            // mergekit's `truncate_vocabulary`: every input keeps the common first rows.
            let rows = shapes.map { $0.shape[0] }.min()!
            for i in shapes.indices where shapes[i].shape[0] > rows {
                inputs[i].rows = rows
                shapes[i].shape[0] = rows
            }
            truncations.append("\(output): every input keeps its first \(rows) rows (of "
                               + shapes.map { "\($0.model): \($0.tensor)" }.joined(separator: ", ") + ")")
        }
        guard recipeIndex[output] == nil else {
            throw .invalidConfig(slice.location, "tensor '\(output)' would be written twice")
        }
        var compute = config.dtype?.value ?? dtypes.dropFirst().reduce(dtypes[0], DType.promoted)
        var outDType = config.outDtype?.value ?? compute
        let copied = try NonFloatTensors.copiedDType(output: output, dtypes: dtypes,
                                                     inputs: shapes.map { ($0.model, $0.tensor) }, at: slice.location)
        if let copied { (compute, outDType) = (copied, copied) }
        var sharedValues = ResolvedParameters()
        if copyFrom == nil, copied == nil {
            let shared = ParameterResolver(scopes: [slice.parameters, config.parameters], t: t)
            for p in spec.parameters where p.scope == .shared {
                sharedValues[p.name] = try resolve(p, resolver: shared, tensor: output, at: config.mergeMethod.location)
            }
            for (i, source) in slice.sources.enumerated() {
                let resolver = ParameterResolver(scopes: [source.parameters, slice.parameters, config.parameters], t: t)
                for p in spec.parameters where p.scope == .input || (p.scope == .nonBase && i != slice.baseIndex) {
                    inputs[i].parameters[p.name] = try resolve(p, resolver: resolver, tensor: inputNames[i],
                                                               at: source.location, model: source.ref.path)
                }
            }
        }
        outputTypes[output] = TensorType(dtype: outDType, shape: shapes[0].shape)
        recipeIndex[output] = recipes.count
        recipes.append(TensorRecipe(output: output, inputs: inputs, baseIndex: slice.baseIndex, shared: sharedValues,
                                    computeType: TensorType(dtype: compute, shape: shapes[0].shape), position: position,
                                    copyFrom: copyFrom))
    }

    /// The typed, range-checked value of `p` for `tensor` (its default when unset; nil when unset and optional).
    /// Throws `invalidConfig` at the value for a wrong kind, non-finite or out-of-range value, and at `location`
    /// (the model entry, or `merge_method`) for a missing required parameter.
    private func resolve(_ p: ParameterSpec, resolver: ParameterResolver, tensor: String, at location: SourceLocation,
                         model: String? = nil) throws(PlanError) -> ResolvedParameter? {
        if let value = try resolver.value(of: p, tensor: tensor) { return value }
        if p.requirement == .optional { return nil }
        let whose = model.map { " for model '\($0)'" } ?? ""
        // A parameter the method does not know whose name is close is the likely cause: point at it.
        let known = Set(spec.parameters.map(\.name))
        let misspelt = resolver.scopes.flatMap(\.entries).first {
            !known.contains($0.name) && KeySuggestion.closest(to: $0.name, among: [p.name]) != nil
        }
        throw .invalidConfig(location, "missing required parameter '\(p.name)'\(whose) (tensor '\(tensor)', merge method '\(spec.name)')"
                             + (misspelt.map { "; is '\($0.name)' (line \($0.keyLocation.line), column \($0.keyLocation.column)) a misspelling of it?" } ?? ""))
    }

    /// Parameters mergekit ignores here: unknown to the method, per-model where they apply to the whole merge, or
    /// `residual_weight`; each with its position and what to say of it.
    private func unusedParameters() -> [(location: SourceLocation, message: String)] {
        let known = Set(spec.parameters.map(\.name))
        let shared = Set(spec.parameters.filter { $0.scope == .shared }.map(\.name))
        var mergeLevel = [config.parameters]
        var modelLevel: [ParameterMap] = []
        switch config.inputs {
        case .models(let models): modelLevel = models.map(\.parameters)
        case .slices(let s):
            mergeLevel += s.map(\.parameters)
            modelLevel = s.flatMap { $0.sources.map(\.parameters) }
        }
        let unknown = (mergeLevel + modelLevel).flatMap(\.entries).filter { !known.contains($0.name) }.map {
            ($0.keyLocation, "parameter '\($0.name)' is not used by merge method '\(spec.name)'"
                + (KeySuggestion.closest(to: $0.name, among: spec.parameters.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""))
        }
        let misplaced = modelLevel.flatMap(\.entries).filter { shared.contains($0.name) }.map {
            ($0.keyLocation, "parameter '\($0.name)' applies to the whole merge; set per model it is ignored "
                + "(move it to the global or slice parameters)")
        }
        var ignored: [(location: SourceLocation, message: String)] = []
        if case .slices(let s) = config.inputs {
            ignored = s.compactMap(\.residualWeight).map {
                ($0.location, "residual_weight is not used by mergekit 0.1.5's merge planner (mergekit/plan.py) "
                    + "and is ignored")
            }
        }
        return unknown + misplaced + ignored
    }

    // MARK: TensorProvider

    func tensorNames() -> [String] { recipes.map(\.output) }

    func type(of tensor: String) -> TensorType? { outputTypes[tensor] }

    func value(of tensor: String, stage _: String, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        if let v = memo[tensor] { return v }
        guard let i = recipeIndex[tensor], let outType = outputTypes[tensor] else {
            throw .stage(config.location, "stage '\(label)' has no tensor '\(tensor)'")
        }
        let recipe = recipes[i]
        if let source = recipe.copyFrom {
            let input = recipe.inputs[source]
            let copy = builder.graph.cast(try input.provider.value(of: input.tensor, stage: label, in: builder),
                                          to: outType.dtype, stage: label)
            memo[tensor] = copy
            return copy
        }
        if !recipe.computeType.dtype.isFloatingPoint {
            let copied = try NonFloatTensors.lower(recipe, stage: label, in: builder)
            memo[tensor] = copied
            return copied
        }
        var values: [ValueID] = []
        for input in recipe.inputs {
            if let gather = input.gather {
                values.append(builder.graph.add(.vocabularyGather(gather), type: recipe.computeType, stage: label,
                                                note: "\(input.provider.displayName) in the \(config.tokenizer!.source.value) vocabulary"))
                continue
            }
            let value: ValueID
            if let rows = input.rows {
                value = try input.provider.leadingRows(rows, of: input.tensor, stage: label, in: builder)
            } else {
                value = try input.provider.value(of: input.tensor, stage: label, in: builder)
            }
            values.append(builder.graph.cast(value, to: recipe.computeType.dtype, stage: label))
        }
        let context = LoweringContext(spec: spec, recipe: recipe, builder: builder, stage: label,
                                      location: config.mergeMethod.location, randomSeed: randomSeed)
        let merged = try method.lower(values, context)
        if !context.undeclaredReads.isEmpty {
            throw .invalidConfig(config.mergeMethod.location, "internal error: merge method '\(spec.name)' read "
                                 + "parameters it does not declare for that input: "
                                 + context.undeclaredReads.joined(separator: ", "))
        }
        let result = builder.graph.cast(merged, to: outType.dtype, stage: label)
        memo[tensor] = result
        return result
    }

    func configJSON() throws(PlanError) -> JSONValue? {
        OutputConfig.make(donor: try donor.configJSON(), layerCount: layerTotal,
                          dtype: config.outDtype?.value ?? config.dtype?.value,
                          tieHead: untiesHead ? false : tiesHead ? true : nil, vocabSize: vocabulary?.rowCount)
    }

    func donorDirectory() throws(PlanError) -> String? { try donor.donorDirectory() }

    /// The models the stage merges, as mergekit's `referenced_models()` (a set there): the base model first, then
    /// every other input in the order written.
    var referencedModels: [ModelReference] {
        var refs: [ModelReference] = config.baseModel.map { [$0] } ?? []
        for source in slices.flatMap(\.sources) where !refs.contains(source.ref) { refs.append(source.ref) }
        return refs
    }

    /// The tokenizer files of this stage's output (`OutputTokenizer`), made once.
    func tokenizerFiles() throws(PlanError) -> TokenizerFiles? {
        if let made = madeTokenizerFiles { return made }
        var directories: [String] = []
        let sources = slices.flatMap(\.sources)
        for ref in referencedModels {
            guard let source = sources.first(where: { $0.ref == ref }) else { continue }
            if let directory = try source.provider.donorDirectory(), !directories.contains(directory) {
                directories.append(directory)
            }
        }
        var found: [String] = []
        let files = try OutputTokenizer.files(vocabulary: vocabulary, template: config.chatTemplate, donor: donor,
                                              models: directories, warnings: &found)
        warnings += found
        madeTokenizerFiles = .some(files)
        return files
    }

    private var madeTokenizerFiles: TokenizerFiles??

    /// The layout of this stage's output, as a later stage reads it: made once (the recipes are complete when the
    /// stage is made; a later stage asks for it per slice and per layer).
    func layout() throws(PlanError) -> ModelLayout {
        if let madeLayout { return madeLayout }
        let layout = ModelLayout(tensorNames: tensorNames(), config: try configJSON())
        madeLayout = layout
        return layout
    }

    private var madeLayout: ModelLayout?

    /// A stage's tensors are computed whole; taking their first rows is not supported.
    func leadingRows(_ rows: Int, of tensor: String, stage: String, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        throw .invalidConfig(config.location, "--unsafe-truncate-embeddings cannot cut tensor '\(tensor)' of stage "
                             + "'\(label)' (a computed tensor); truncate the inputs of that stage instead")
    }
}
