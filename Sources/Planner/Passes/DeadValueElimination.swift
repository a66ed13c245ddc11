import IR

/// Drops the nodes no output depends on (left behind by other rewrites) and renumbers the rest in order.
public struct DeadValueElimination: GraphPass {
    public init() {}

    public var name: String { "dead-value-elimination" }

    public func run(_ graph: Graph) -> Graph {
        var live = Set<ValueID>()
        var stack = graph.outputs.map(\.value)
        while let v = stack.popLast() {
            guard graph.nodes.indices.contains(v.index), live.insert(v).inserted else { continue }
            stack.append(contentsOf: graph[v].operands)
        }
        return graph.rewritten { id, node, result in live.contains(id) ? result.append(node) : nil }
    }
}
