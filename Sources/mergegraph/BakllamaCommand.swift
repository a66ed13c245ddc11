import ArgumentParser
import Parser

/// `mergegraph bakllama CONFIG OUT_DIR`: a frankenmerge from a `bakllama.py` config (`layer_slices`,
/// `embedding_source`, `lm_head_source`), translated into a passthrough `slices:` config and merged like one.
struct BakllamaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bakllama",
        abstract: "Stack layers from a bakllama.py config (layer_slices, embedding_source, lm_head_source).",
        usage: "mergegraph bakllama CONFIG OUT_DIR [--fp16] [--print-yaml] [--plan-only [--format text|json|dot]] "
            + "[mergegraph run options]",
        discussion: """
            Each slice takes layers start..<end of its model; `scale` multiplies that slice's mlp.down_proj weights. \
            The embedding comes from embedding_source (default: the first slice's model), the final norm and lm_head \
            from lm_head_source (default: the last slice's model), as bakllama.py did. The config becomes a \
            passthrough `slices:` config (--print-yaml shows it; an explicit source is an empty slice of that model \
            at the start or end).
            """)

    @Argument(help: "A bakllama.py config (YAML).")
    var config: String

    @Flag(name: .customLong("fp16"), inversion: .prefixedNo, help: "Write float16 (dtype: float16).")
    var fp16 = false

    @OptionGroup var translated: TranslatedRunOptions

    func run() throws {
        var yaml: MergekitYAML?
        try reportingErrors {
            let bakllama = try BakllamaConfig.parse(file: config)
            for warning in bakllama.warnings { Console.error(warning) }
            yaml = Self.mergekitConfig(bakllama, fp16: fp16)
        }
        guard let yaml else { return }
        try translated.execute(yaml, label: "(mergegraph bakllama \(config))")
    }

    /// The passthrough config: one slice per `layer_slices` entry (with `scale` on `down_proj` only, as mergekit
    /// 0.1.5's bakllama wrapper writes it), and an empty first (last) slice of `embedding_source` (`lm_head_source`)
    /// when it is not the first (last) slice's model: mergekit takes the tensors before the layers from the first
    /// slice's model and those after from the last one's.
    static func mergekitConfig(_ config: BakllamaConfig, fp16: Bool) -> MergekitYAML {
        func slice(_ model: String, _ start: Int, _ end: Int, scale: Double? = nil) -> MergekitYAML {
            var source: [(key: String, value: MergekitYAML)] = [
                ("model", .string(model)), ("layer_range", .sequence([.integer(start), .integer(end)])),
            ]
            if let scale {
                source.append(("parameters", .mapping([("scale", .sequence([
                    .mapping([("filter", .string("down_proj")), ("value", .number(scale))]),
                ]))])))
            }
            return .mapping([("sources", .sequence([.mapping(source)]))])
        }
        var slices = config.layerSlices.map { slice($0.model.path, $0.start, $0.end, scale: $0.scale?.value) }
        if config.embeddingModel != config.layerSlices[0].model {
            slices.insert(slice(config.embeddingModel.path, 0, 0), at: 0)
        }
        if config.headModel != config.layerSlices[config.layerSlices.count - 1].model {
            slices.append(slice(config.headModel.path, 0, 0))
        }
        var document: [(key: String, value: MergekitYAML)] = [
            ("merge_method", .string("passthrough")), ("slices", .sequence(slices)),
        ]
        if fp16 { document.append(("dtype", .string("float16"))) }
        return .mapping(document)
    }
}
