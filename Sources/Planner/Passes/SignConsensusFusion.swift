import IR

/// Fuses TIES sign consensus: a `disjoint_merge` whose elected sign is a `sign_elect` of the same task vectors,
/// read by nothing else, becomes one `ties_merge` over the task vectors. The kernel then elects and merges eight
/// elements at a time in registers, with the same bytes and without a chunk buffer of signs; the plan, its
/// `--dump-ir` text and its memory prediction describe the fused op that runs. Likewise an `sce_merge` whose
/// elected sign is a `sign_elect` of weights 1 of its own task vectors, read by nothing else, becomes one
/// `sce_elect_merge` (SCE's mix reads the task vectors once instead of twice, without the chunk buffer of signs).
/// The `sign_elect` is left without readers for `DeadValueElimination`.
public struct SignConsensusFusion: GraphPass {
    public init() {}

    public var name: String { "sign-consensus-fusion" }

    public func run(_ graph: Graph) -> Graph {
        let readers = graph.readerCounts
        return graph.rewritten { id, node, result in
            let original = graph[id]
            if case .sceMerge = original.op, let sign = original.operands.first,
               case .signElect(let elect) = graph[sign].op, elect.allSatisfy({ $0 == 1 }),
               graph[sign].operands == Array(original.operands.dropFirst()), readers[sign] == 1 {
                var fused = node
                fused.op = .sceElectMerge(masked: false)
                fused.operands = Array(node.operands.dropFirst())
                return result.append(fused)
            }
            guard case .disjointMerge(let weights, let normalize, let lambda) = original.op,
                  let sign = original.operands.first, case .signElect(let elect) = graph[sign].op,
                  graph[sign].operands == Array(original.operands.dropFirst()), readers[sign] == 1 else {
                return result.append(node)
            }
            var fused = node
            fused.op = .tiesMerge(electWeights: elect, weights: weights, normalize: normalize, lambda: lambda)
            fused.operands = Array(node.operands.dropFirst())
            return result.append(fused)
        }
    }
}
