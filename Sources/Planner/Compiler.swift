import Checkpoint
import IR
import Parser

/// Compiles a parsed config (one or more stages) into a scheduled IR graph. Touches no tensor data.
///
/// The pipeline: lower every stage's tensors (`Stage`, `MergeMethod` declarations) → verify → each of
/// `passes` followed by verify → schedule with the kernels' declared costs (giving up PyTorch's order among equal
/// magnitudes on the `magnitude_prune` ops of groups that do not fit the budget otherwise, with one warning) →
/// verify the schedule.
public enum Compiler {
    /// The rewrites run between lowering and scheduling, in order.
    public static let passes: [any GraphPass] = [SignConsensusFusion(), DeadValueElimination(), SCEMaskFusion(),
                                                 DeadValueElimination()]

    /// Compiles `file`, reading checkpoint metadata through `catalog` and kernel costs through `costs`.
    /// - Throws: `PlanError` naming the config position, model or tensor at fault.
    public static func compile(_ file: ConfigFile, catalog: CheckpointCatalog, costs: any CostModel,
                               options: PlannerOptions = PlannerOptions()) throws(PlanError) -> Plan {
        let resolver = try StageResolver(file: file, catalog: catalog, randomSeed: options.randomSeed,
                                         truncateEmbeddings: options.unsafeTruncateEmbeddings,
                                         loraMergeDType: options.loraMergeDType)
        var outputs: [(stage: Stage, directory: String)] = []
        if options.allStages {
            outputs = try resolver.namedStages().map { ($0, $0.label) }
            if file.documents.contains(where: { $0.name == nil }) {
                outputs.append((try resolver.finalStage(named: nil), ""))
            }
        } else {
            outputs = [(try resolver.finalStage(named: options.stage), "")]
        }
        let builder = resolver.builder
        var targets: [OutputTarget] = []
        for (stage, directory) in outputs {
            for name in stage.tensorNames() {
                let value = try stage.value(of: name, stage: stage.label, in: builder)
                builder.graph.addOutput(GraphOutput(name: name, value: value, stage: stage.label, directory: directory))
            }
            targets.append(OutputTarget(directory: directory, stage: stage.label,
                                        config: try stage.configJSON()?.serialized(),
                                        tokenizerDonor: try stage.donorDirectory(),
                                        tokenizer: try stage.tokenizerFiles()))
        }
        var graph = builder.graph
        try verify(graph, after: "lowering")
        for pass in passes {
            graph = pass.run(graph)
            try verify(graph, after: pass.name)
        }
        let (relaxedGraph, schedule, relaxation) = try Scheduler.scheduleRelaxingTies(
            graph, maxShardBytes: options.outShardSize, costs: costs, limits: options.limits)
        graph = relaxedGraph
        do {
            try Verifier.verify(graph, schedule)
        } catch {
            throw .stage(nil, "after scheduling: \(error.description)")
        }
        let stages = resolver.compiledStages
        let header = [
            "mergegraph plan — \(file.path)",
            "stages: " + stages.map { "\($0.label) (\($0.spec.name))" }.joined(separator: ", "),
        ] + targets.map { "output: stage \($0.stage) → OUT_DIR/\($0.directory)" }
        var plan = Plan(graph: graph, schedule: schedule, targets: targets, header: header,
                        warnings: file.warnings + stages.flatMap(\.warnings)
                            + [relaxation?.warning(budget: options.limits.budgetBytes)].compactMap { $0 })
        plan.stages = stages.map { PlanStage(name: $0.label, method: $0.spec.name) }
        plan.configText = file.text
        for (i, output) in outputs.enumerated() {
            plan.targets[i].modelCard = ModelCardWriter.card(stage: output.stage, directory: output.directory, plan: plan,
                                                             configText: file.text)
        }
        return plan
    }

    private static func verify(_ graph: Graph, after step: String) throws(PlanError) {
        do {
            try Verifier.verify(graph)
        } catch {
            throw .stage(nil, "after \(step): \(error.description)")
        }
    }
}

/// Maps model references to checkpoints or stages, compiling each stage once and detecting cycles.
final class StageResolver {
    static let finalLabel = "<final>"
    private let file: ConfigFile
    private let catalog: CheckpointCatalog
    private let randomSeed: UInt64
    /// `PlannerOptions.unsafeTruncateEmbeddings`.
    private let truncateEmbeddings: Bool
    /// `PlannerOptions.loraMergeDType`.
    private let loraMergeDType: DType?
    private var documents: [String: MergeConfig] = [:]
    private var stages: [String: Stage] = [:]
    private var compiling: [String] = []
    /// Providers by reference as written: checkpoints, and checkpoints with a LoRA adapter.
    private var checkpoints: [String: TensorProvider] = [:]
    private var checkpointsByPath: [String: CheckpointSource] = [:]
    /// The graph under construction; checkpoints register as its models when first referenced.
    let builder = GraphBuilder()
    private(set) var compiledStages: [Stage] = []

    init(file: ConfigFile, catalog: CheckpointCatalog, randomSeed: UInt64 = 0,
         truncateEmbeddings: Bool = false, loraMergeDType: DType? = nil) throws(PlanError) {
        self.file = file
        self.catalog = catalog
        self.randomSeed = randomSeed
        self.truncateEmbeddings = truncateEmbeddings
        self.loraMergeDType = loraMergeDType
        for doc in file.documents {
            let label = doc.name?.value ?? StageResolver.finalLabel
            if let first = documents[label] {
                let what = doc.name == nil ? "more than one document has no name (the final output)"
                    : "stage name '\(label)' is used twice"
                throw .stage(doc.name?.location ?? doc.location, "\(what); the first is at \(first.name?.location ?? first.location)")
            }
            documents[label] = doc
        }
        guard !documents.isEmpty else { throw .stage(nil, "\(file.path): the config has no documents") }
    }

    func finalStage(named name: String?) throws(PlanError) -> Stage {
        let label: String
        if let name {
            guard documents[name] != nil else {
                let known = documents.keys.filter { $0 != StageResolver.finalLabel }.sorted()
                throw .stage(nil, "\(file.path): no stage named '\(name)' (stages: \(known.joined(separator: ", ")))")
            }
            label = name
        } else if documents[StageResolver.finalLabel] != nil {
            label = StageResolver.finalLabel
        } else {
            throw .stage(nil, "\(file.path): every document has a name, so there is no final stage; choose one with --stage NAME")
        }
        return try stage(label, referencedAt: nil)
    }

    /// Every named stage, compiled, in document order.
    func namedStages() throws(PlanError) -> [Stage] {
        var result: [Stage] = []
        for doc in file.documents {
            guard let name = doc.name else { continue }
            if name.value.isEmpty || name.value.hasPrefix(".") || name.value.contains("/") {
                throw .stage(name.location, "stage name '\(name.value)' cannot be a folder name for --all-stages "
                             + "(it must be non-empty, without '/' and not start with '.')")
            }
            result.append(try stage(name.value, referencedAt: nil))
        }
        if result.isEmpty { throw .stage(nil, "\(file.path): --all-stages needs named stages (`name:`), and no document has one") }
        return result
    }

    private func stage(_ label: String, referencedAt location: SourceLocation?) throws(PlanError) -> Stage {
        if let done = stages[label] { return done }
        if let start = compiling.firstIndex(of: label) {
            let cycle = (compiling[start...] + [label]).joined(separator: " → ")
            throw .stage(location, "reference cycle between stages: \(cycle)")
        }
        guard let doc = documents[label] else { throw .stage(location, "no stage named '\(label)'") }
        compiling.append(label)
        let compiled = try Stage(config: doc, label: label, randomSeed: randomSeed,
                                 truncateEmbeddings: truncateEmbeddings, strict: file.strict) { (ref: ModelReference) throws(PlanError) -> TensorProvider in
            try self.provider(for: ref)
        }
        compiling.removeLast()
        stages[label] = compiled
        compiledStages.append(compiled)
        return compiled
    }

    private func provider(for ref: ModelReference) throws(PlanError) -> TensorProvider {
        let isDirectory = catalog.hasCheckpointDirectory(at: ref.path)
        if documents[ref.path] != nil, ref.path != StageResolver.finalLabel {
            if isDirectory {
                throw .stage(ref.location, "'\(ref.path)' names both a stage and an existing model directory; "
                             + "the stage would be used — rename the stage, or write the directory as './\(ref.path)' to use it")
            }
            return try stage(ref.path, referencedAt: ref.location)
        }
        if let known = checkpoints[ref.path] { return known }
        // A name close to a stage's that is no folder is a misspelt stage, not a Hub repo to go looking for.
        let stageNames = documents.keys.filter { $0 != StageResolver.finalLabel }
        if !isDirectory, !ref.path.contains("/"), !ref.path.contains("+"), !ref.path.contains("@"),
           let guess = KeySuggestion.closest(to: ref.path, among: stageNames.sorted()) {
            throw .stage(ref.location, "no stage named '\(ref.path)' and no model folder of that name "
                         + "(did you mean the stage '\(guess)'?)")
        }
        guard let parts = ref.parts else {
            throw .model(ref.location, path: ref.path, "is not a model reference mergekit reads: MODEL, MODEL@REVISION or "
                         + "MODEL+LORA (each part a directory or a repo id, one '+' and at most one '@' in each part)")
        }
        let base = try checkpoint(parts.model, for: ref)
        guard let adapterPath = parts.adapter else {
            checkpoints[ref.path] = base
            return base
        }
        let adapter: LoRAAdapterInfo
        do {
            adapter = try catalog.adapter(at: adapterPath.path, revision: adapterPath.revision)
        } catch {
            throw .model(ref.location, path: ref.path, "LoRA adapter '\(adapterPath)': \(error)")
        }
        let index = builder.graph.addModel(ModelInput(name: adapterPath.description, path: adapter.resolvedPath,
                                                      kind: .loraAdapter))
        let adapted = try AdaptedCheckpoint(displayName: ref.path, base: base, adapter: adapter,
                                            adapterName: adapterPath.description, adapterModel: index,
                                            dtype: loraMergeDType, location: ref.location)
        checkpoints[ref.path] = adapted
        return adapted
    }

    /// The checkpoint `path` names — a directory (its revision ignored, as mergekit ignores it for local paths), or
    /// a model the catalog resolves remotely (a Hugging Face repo id at that revision) — registered as a model of
    /// the graph once per resolved directory.
    private func checkpoint(_ path: ModelPath, for ref: ModelReference) throws(PlanError) -> CheckpointSource {
        if let known = checkpoints[path.description] as? CheckpointSource { return known }
        let info: CheckpointInfo
        do {
            info = try catalog.checkpoint(at: path.path, revision: path.revision)
        } catch {
            throw .model(ref.location, path: path.description, String(describing: error))
        }
        if let same = checkpointsByPath[info.resolvedPath] {
            checkpoints[path.description] = same
            return same
        }
        var config: JSONValue?
        if let bytes = info.configJSON {
            do {
                config = try JSONParser.parse(bytes)
            } catch {
                throw .model(ref.location, path: path.description, "config.json: \(error)")
            }
        }
        let source = CheckpointSource(displayName: path.description, info: info,
                                      modelIndex: builder.graph.addModel(ModelInput(name: path.description, path: info.resolvedPath)),
                                      config: config)
        checkpoints[path.description] = source
        checkpointsByPath[info.resolvedPath] = source
        return source
    }
}
