import ArgumentParser
import Checkpoint

/// `mergegraph legacy OUT_DIR --merge MODEL [--weight W] [--density D] …`: the command line of mergekit's first
/// `main.py` and of mergekit 0.1.5's `mergekit-legacy`, translated into a mergekit config and merged like one.
struct LegacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "legacy",
        abstract: "Merge from mergekit-legacy's (the first main.py's) command line: --merge, --weight, --density, --method.",
        usage: "mergegraph legacy OUT_DIR --merge MODEL [--weight W] [--density D] [--merge MODEL …] [--base-model MODEL] "
            + "[--method ties|linear|slerp|…] [--layer-gradient LIST] [options] [mergegraph run options]",
        discussion: """
            As mergekit-legacy: the models are the --merge models in order, then --base-model when it is not one of \
            them. The i-th --weight and --density go to the i-th model whatever their position on the line (one value \
            goes to every model, the base included). Without --weight every weight is 1 (mergekit-legacy's documented \
            default; mergekit 0.1.5 itself stops with "Missing required parameter weight"). With --method slerp the \
            one --weight is t, or --layer-gradient gives t as a gradient over the layers.
            """)

    @Option(name: .customLong("merge"), help: ArgumentHelp("Add a model to the merge.", valueName: "model"))
    var merge: [String] = []

    @Option(name: .customLong("weight"), help: "Weight of the i-th model (default 1.0 for all; slerp: t).")
    var weight: [Double] = []

    @Option(name: .customLong("density"), help: "Fraction of weights to keep for the i-th model (ties only).")
    var density: [Double] = []

    @Option(name: .customLong("method"), help: "Merge method (any mergekit merge_method).")
    var method: String = "ties"

    @Option(name: .customLong("base-model"), help: ArgumentHelp("Base model for the merge.", valueName: "model"))
    var baseModel: String?

    @Option(name: .customLong("layer-gradient"),
            help: ArgumentHelp("With --method slerp: t as a gradient over the layers, a JSON list like \"[0, 0.3, 0.7, 1.0]\" "
                               + "(the first main.py's option; mergekit-legacy 0.1.5 lacks it).", valueName: "list"))
    var layerGradient: String?

    @Flag(name: .customLong("normalize"), inversion: .prefixedNo, help: "Divide merged parameters by the sum of weights.")
    var normalize = true

    @Flag(name: .customLong("int8-mask"), inversion: .prefixedNo, help: "mergekit: store masks in int8 (no effect on the result).")
    var int8Mask = false

    @Flag(name: .customLong("bf16"), inversion: .prefixedNo, help: "Merge in bfloat16 (dtype: bfloat16).")
    var bf16 = false

    @Flag(name: .customLong("naive-count"), inversion: .prefixedNo,
          help: "Sets consensus_method: count, which mergekit 0.1.5's ties ignores (and so does mergegraph, with a warning).")
    var naiveCount = false

    @OptionGroup var translated: TranslatedRunOptions

    func run() throws {
        let config: MergekitYAML
        do {
            config = try LegacyArguments(merge: merge, weight: weight, density: density, method: method,
                                         baseModel: baseModel, layerGradient: layerGradient, normalize: normalize,
                                         int8Mask: int8Mask, bf16: bf16, naiveCount: naiveCount).config()
        } catch {
            throw usageError(error.description)
        }
        try translated.execute(config, label: "(mergegraph legacy arguments)")
    }
}

/// The legacy arguments and their translation into mergekit's config (mergekit 0.1.5 `scripts/legacy.py`).
struct LegacyArguments {
    var merge: [String]
    var weight: [Double]
    var density: [Double]
    var method: String
    var baseModel: String?
    var layerGradient: String?
    var normalize = true
    var int8Mask = false
    var bf16 = false
    var naiveCount = false

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The config mergekit-legacy builds from these arguments, or the flag at fault.
    func config() throws(Problem) -> MergekitYAML {
        guard !merge.isEmpty else { throw Problem(description: "--merge: give at least one model to merge") }
        var models = merge
        if let baseModel, !merge.contains(baseModel) { models.append(baseModel) }
        var modelParameters = Array(repeating: [(key: String, value: MergekitYAML)](), count: models.count)
        var parameters: [(key: String, value: MergekitYAML)] = []

        func assign(_ values: [Double], _ name: String, flag: String) throws(Problem) {
            let values = values.count == 1 ? Array(repeating: values[0], count: models.count) : values
            guard values.count <= models.count else {
                throw Problem(description: "\(flag): \(values.count) values for \(models.count) models ("
                              + models.joined(separator: ", ") + "); give one per model in --merge order, or one for all")
            }
            for (i, value) in values.enumerated() { modelParameters[i].append((name, .number(value))) }
        }

        try assign(density, "density", flag: "--density")
        if method == "slerp" {
            if let layerGradient {
                guard weight.isEmpty else {
                    throw Problem(description: "--weight and --layer-gradient both give slerp's t; give one of them")
                }
                parameters.append(("t", .sequence(try Self.gradient(layerGradient).map(MergekitYAML.number))))
            } else {
                guard weight.count == 1 else {
                    throw Problem(description: "--weight: slerp takes exactly one --weight (its t), found \(weight.count)")
                }
                parameters.append(("t", .number(weight[0])))
            }
        } else {
            if layerGradient != nil {
                throw Problem(description: "--layer-gradient: only with --method slerp (it is a gradient of t); "
                              + "--method \(method) takes --weight per model")
            }
            try assign(weight.isEmpty ? [1.0] : weight, "weight", flag: "--weight")
        }
        if int8Mask { parameters.append(("int8_mask", .bool(true))) }
        if naiveCount { parameters.append(("consensus_method", .string("count"))) }
        parameters.append(("normalize", .bool(normalize)))

        var document: [(key: String, value: MergekitYAML)] = [
            ("merge_method", .string(method)),
            ("models", .sequence(zip(models, modelParameters).map { model, parameters in
                .mapping([("model", .string(model)), ("parameters", .mapping(parameters))])
            })),
            ("parameters", .mapping(parameters)),
        ]
        if let baseModel { document.append(("base_model", .string(baseModel))) }
        if bf16 { document.append(("dtype", .string("bfloat16"))) }
        return .mapping(document)
    }

    /// `--layer-gradient`'s JSON list of at least two finite numbers.
    static func gradient(_ text: String) throws(Problem) -> [Double] {
        let problem = Problem(description: "--layer-gradient: '\(text)' is not a JSON list of at least two numbers like \"[0, 0.5, 1.0]\"")
        guard let value = try? JSONParser.parse(Array(text.utf8)), case .array(let items) = value, items.count >= 2 else {
            throw problem
        }
        var numbers: [Double] = []
        for item in items {
            guard case .number(let lexeme) = item, let x = Double(lexeme), x.isFinite else { throw problem }
            numbers.append(x)
        }
        return numbers
    }
}
