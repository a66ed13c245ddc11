/// A tensor-level dataflow graph in SSA form with hash-consing: asking twice for the same
/// (op, operands, type) gives the same value.
public struct Graph: Sendable {
    public private(set) var models: [ModelInput] = []
    public private(set) var nodes: [Node] = []
    public private(set) var outputs: [GraphOutput] = []
    /// How many loads lowering asked for, before deduplication.
    public private(set) var loadRequests = 0
    private var modelIndex: [String: Int] = [:]
    private var nodeIndex: [NodeKey: ValueID] = [:]

    public init() {}

    /// Registers an input checkpoint (deduplicated by resolved path) and returns its index.
    public mutating func addModel(_ model: ModelInput) -> Int {
        if let i = modelIndex[model.path] { return i }
        models.append(model)
        modelIndex[model.path] = models.count - 1
        return models.count - 1
    }

    /// Adds a node, or returns the existing node with the same op, operands and type.
    @discardableResult
    public mutating func add(_ op: Op, _ operands: [ValueID] = [], type: TensorType,
                             stage: String? = nil, note: String? = nil) -> ValueID {
        if case .load = op { loadRequests += 1 }
        let key = NodeKey(op: op, operands: operands, type: type)
        if let existing = nodeIndex[key] {
            if let stage, !nodes[existing.index].stages.contains(stage) {
                nodes[existing.index].stages.append(stage)
            }
            return existing
        }
        let id = ValueID(nodes.count)
        nodes.append(Node(op: op, operands: operands, type: type, stages: stage.map { [$0] } ?? [], note: note))
        nodeIndex[key] = id
        return id
    }

    /// Rounds `value` to `dtype`, or returns it unchanged when it already has that dtype.
    public mutating func cast(_ value: ValueID, to dtype: DType, stage: String? = nil) -> ValueID {
        let type = self[value].type
        if type.dtype == dtype { return value }
        return add(.cast(dtype), [value], type: TensorType(dtype: dtype, shape: type.shape), stage: stage)
    }

    /// Declares a tensor of the merged model.
    public mutating func addOutput(_ output: GraphOutput) {
        outputs.append(output)
    }

    public subscript(id: ValueID) -> Node { nodes[id.index] }

    /// All value ids in definition order.
    public var values: [ValueID] { nodes.indices.map(ValueID.init) }
}

/// The identity of a node for hash-consing.
private struct NodeKey: Hashable, Sendable {
    var op: Op
    var operands: [ValueID]
    var type: TensorType
}
