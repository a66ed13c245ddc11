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

    /// Adds `node` as it is (its stages and note kept), or merges its stages into the existing node with the same
    /// op, operands and type. Loads added this way do not count as load requests.
    @discardableResult
    public mutating func append(_ node: Node) -> ValueID {
        let key = NodeKey(op: node.op, operands: node.operands, type: node.type)
        if let existing = nodeIndex[key] {
            for stage in node.stages where !nodes[existing.index].stages.contains(stage) {
                nodes[existing.index].stages.append(stage)
            }
            return existing
        }
        let id = ValueID(nodes.count)
        nodes.append(node)
        nodeIndex[key] = id
        return id
    }

    /// A new graph over the same models: each node in definition order is handed to `transform` with its
    /// operands renamed into the new graph, and `transform` adds what replaces it (usually `append(node)`) and
    /// returns its value, or nil to drop it (no kept node or output may read a dropped one). Outputs are
    /// renamed; the count of load requests is kept, as it describes the lowering.
    public func rewritten(_ transform: (ValueID, Node, inout Graph) -> ValueID?) -> Graph {
        var result = Graph()
        result.models = models
        result.modelIndex = modelIndex
        result.loadRequests = loadRequests
        var renamed: [ValueID: ValueID] = [:]
        for id in values {
            var node = self[id]
            let operands = node.operands.compactMap { renamed[$0] }
            guard operands.count == node.operands.count else { continue }
            node.operands = operands
            if let new = transform(id, node, &result) { renamed[id] = new }
        }
        // An output whose value was dropped points nowhere, which the verifier reports.
        result.outputs = outputs.map { output in
            GraphOutput(name: output.name, value: renamed[output.value] ?? ValueID(-1), stage: output.stage,
                        directory: output.directory)
        }
        return result
    }

    /// How many nodes read each value, outputs counted as readers.
    public var readerCounts: [ValueID: Int] {
        var count: [ValueID: Int] = [:]
        for node in nodes { for operand in node.operands { count[operand, default: 0] += 1 } }
        for output in outputs { count[output.value, default: 0] += 1 }
        return count
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

    /// Bytes the graph reads from its input checkpoints: every load's tensor and every row a `vocab_gather` picks.
    public var readBytes: Int {
        nodes.reduce(0) { total, node in
            switch node.op {
            case .load: return total + node.type.byteCount
            case .vocabularyGather(let gather): return total + gather.readBytes
            default: return total
            }
        }
    }

    /// All value ids in definition order.
    public var values: [ValueID] { nodes.indices.map(ValueID.init) }
}

/// The identity of a node for hash-consing.
private struct NodeKey: Hashable, Sendable {
    var op: Op
    var operands: [ValueID]
    var type: TensorType
}
