import IR

/// The model card of a stage's output, laid out as mergekit 0.1.5's `generate_card` (`mergekit/card.py`) lays it out
/// but written offline (mergekit asks the Hugging Face Hub whether each model path is a repository, and fails without
/// a network): front matter with the input models as `base_model`, `library_name: transformers` and the tags `merge`,
/// `mergekit`, `mergegraph`; the merge method with what it does and the paper it follows; the models; the config as
/// given; what the compiled plan does (tensors written, bytes read, predicted peak memory).
enum ModelCardWriter {
    /// The card of `stage`'s output in `directory` of `plan`, showing `configText`.
    static func card(stage: Stage, directory: String, plan: Plan, configText: String) -> ModelCard {
        let sources = stage.referencedModels
        // mergekit names no base for slerp ("curse my past self"): both models are listed.
        let base = stage.spec.name == "slerp" ? nil : stage.config.baseModel
        var front = "base_model:\n" + sources.map { "- \(yamlScalar($0.path))\n" }.joined()
        front += "library_name: transformers\ntags:\n- merge\n- mergekit\n- mergegraph\n"
        let spec = stage.spec
        var body = "This is a merge of pre-trained language models created with mergegraph from a "
            + "[mergekit](https://github.com/arcee-ai/mergekit) configuration.\n\n"
        body += "## Merge Details\n### Merge Method\n\n"
        body += "This model was merged using the `\(spec.name)` merge method (\(spec.summary); follows \(spec.reference))"
            + (base.map { " using \($0.path) as a base" } ?? "") + ".\n\n"
        body += "### Models Merged\n\nThe following models were included in the merge:\n"
            + sources.filter { $0 != base }.map { "* \($0.path)\n" }.joined() + "\n"
        body += "### Configuration\n\nThe following YAML configuration was used to produce this model:\n\n```yaml\n"
            + configText + (configText.hasSuffix("\n") || configText.isEmpty ? "" : "\n") + "```\n\n"
        let outputs = plan.graph.outputs.indices.filter { plan.graph.outputs[$0].directory == directory }
        let bytes = outputs.reduce(0) { $0 + plan.graph[plan.graph.outputs[$1].value].type.byteCount }
        let shards = plan.schedule.shards.filter { shard in shard.outputs.contains { outputs.contains($0) } }.count
        body += "### Plan\n\nmergegraph compiled this configuration into a dataflow graph of \(plan.graph.nodes.count) "
            + "nodes and ran it chunk by chunk: \(outputs.count) tensors written (\(formatBytes(bytes)) in \(shards) "
            + "shard\(shards == 1 ? "" : "s")), \(formatBytes(plan.graph.readBytes)) read from the inputs, predicted peak "
            + "memory \(formatBytes(plan.schedule.predictedPeakBytes)).\n"
        if let vocabulary = stage.vocabulary {
            body += "The vocabulary (tokenizer source \(vocabulary.settings.source.value)) has "
                + "\(vocabulary.built.tokens.count) tokens; the embeddings and output heads have \(vocabulary.rowCount) rows.\n"
        }
        return ModelCard(frontMatter: front, body: body, configText: configText)
    }

    /// `text` as a YAML scalar: plain when it is only letters, digits and `._/-` (and does not start with one of
    /// `-.`), else single-quoted.
    static func yamlScalar(_ text: String) -> String {
        let plain = !text.isEmpty && text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._/-".unicodeScalars.contains($0)
        } && !text.hasPrefix("-") && !text.hasPrefix(".")
        return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
