import Foundation
import Checkpoint
import IR
import Parser

/// Owns the graph under construction; providers add nodes to it.
final class GraphBuilder {
    var graph = Graph()
}

/// Something a config can name as a model: an input checkpoint, or another stage of a multi-document config.
protocol TensorProvider: AnyObject {
    /// The name used in messages and `--dump-ir`.
    var displayName: String { get }
    /// Tensor names, in order.
    func tensorNames() throws(PlanError) -> [String]
    /// The type of one tensor (nil: no such tensor).
    func type(of tensor: String) throws(PlanError) -> TensorType?
    /// The IR value of one tensor, lowered on first use.
    func value(of tensor: String, stage: String, in builder: GraphBuilder) throws(PlanError) -> ValueID
    /// The `config.json` this model would have on disk.
    func configJSON() throws(PlanError) -> JSONValue?
    /// The checkpoint directory whose tokenizer files this model carries.
    func donorDirectory() throws(PlanError) -> String?
    /// The tokenizer files this model carries (an output merged from it copies them); nil when it has none.
    func tokenizerFiles() throws(PlanError) -> TokenizerFiles?
    /// The model's layout: stacks, embeddings, tensors after the stacks, buffers (see `ModelLayout`).
    func layout() throws(PlanError) -> ModelLayout
    /// The IR value of the first `rows` rows (along dimension 0) of one tensor (`--unsafe-truncate-embeddings`).
    func leadingRows(_ rows: Int, of tensor: String, stage: String, in builder: GraphBuilder) throws(PlanError) -> ValueID
}

extension TensorProvider {

    /// The name this model stores `name` under: `name` itself, or `name` with `wrapper.` added or its first
    /// component taken off (a checkpoint saved from the base model, such as GPT-2 from the Hub with `h.0.…`
    /// and `wte`, next to one saved from the LM-head model, with `transformer.h.0.…`), as mergekit's architecture
    /// aliases match them; nil when the model has none of these.
    func storedName(of name: String, wrapper: String?) throws(PlanError) -> String? {
        if try type(of: name) != nil { return name }
        if let wrapper, try type(of: wrapper + "." + name) != nil { return wrapper + "." + name }
        if let dot = name.firstIndex(of: "."), try type(of: String(name[name.index(after: dot)...])) != nil {
            return String(name[name.index(after: dot)...])
        }
        return nil
    }

    /// The input embedding that stands in for a missing output head `name` (`lm_head.weight`, `embed_out.weight`)
    /// when the model ties them (`tie_word_embeddings` not false), as mergekit's `tied_names` do; nil otherwise.
    func tiedEmbedding(for name: String, wrapper: String?) throws(PlanError) -> String? {
        let parts = name.split(separator: ".")
        guard parts.contains("lm_head") || parts.contains("embed_out"),
              try configJSON()?["tie_word_embeddings"]?.boolValue != false else { return nil }
        return try layout().preTensors.first { candidate in
            let lower = candidate.lowercased()
            return ["embed_tokens", "wte", "embed_in", "word_embeddings"].contains { lower.contains($0) }
        }
    }
}

/// An input checkpoint on disk.
final class CheckpointSource: TensorProvider {
    let displayName: String
    let info: CheckpointInfo
    let modelIndex: Int
    let config: JSONValue?

    init(displayName: String, info: CheckpointInfo, modelIndex: Int, config: JSONValue?) {
        self.displayName = displayName
        self.info = info
        self.modelIndex = modelIndex
        self.config = config
    }

    func tensorNames() -> [String] { info.tensorNames }

    func type(of tensor: String) -> TensorType? { info.tensors[tensor]?.type }

    func value(of tensor: String, stage: String, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        guard let type = info.tensors[tensor]?.type else {
            throw .stage(nil, "tensor '\(tensor)' is missing from model '\(displayName)'")
        }
        return builder.graph.add(.load(model: modelIndex, tensor: tensor), type: type, stage: stage)
    }

    func configJSON() -> JSONValue? { config }

    /// Computed once: the planner asks for it per slice, per stack and per missing head.
    private(set) lazy var cachedLayout = ModelLayout(tensorNames: info.tensorNames, config: config)

    func layout() -> ModelLayout { cachedLayout }

    func donorDirectory() -> String? { info.resolvedPath }

    /// Copies of the tokenizer and generation files the directory has (mergekit's `_copy_tokenizer` list).
    func tokenizerFiles() -> TokenizerFiles? {
        let files = TokenizerFiles.copiedNames.compactMap { name -> SideFile? in
            let path = (info.resolvedPath as NSString).appendingPathComponent(name)
            return FileManager.default.fileExists(atPath: path) ? SideFile(name: name, contents: .copy(path)) : nil
        }
        return files.isEmpty ? nil : TokenizerFiles(files: files, required: false)
    }

    /// A load of the tensor's first `rows` rows: the stored bytes are row-major, so they are its first elements.
    func leadingRows(_ rows: Int, of tensor: String, stage: String, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        guard var type = info.tensors[tensor]?.type, let stored = type.shape.first, rows <= stored else {
            throw .stage(nil, "tensor '\(tensor)' of model '\(displayName)' has fewer than \(rows) rows")
        }
        type.shape[0] = rows
        return builder.graph.add(.load(model: modelIndex, tensor: tensor), type: type, stage: stage,
                                 note: "first \(rows) of \(stored) rows (--unsafe-truncate-embeddings)")
    }
}
