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
}

extension TensorProvider {
    func layout() throws(PlanError) -> ModelLayout { ModelLayout(tensorNames: try tensorNames()) }
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

    func donorDirectory() -> String? { info.resolvedPath }
}
