import IR

/// Fuses SCE's masking into its mix: an unmasked `sce_elect_merge` whose every task vector is a `mul` of a task
/// vector by one and the same `variance_topk` mask, each `mul` read by nothing else, becomes
/// `sce_elect_merge(masked)` over the unmasked task vectors followed by the mask. The kernel multiplies each task
/// vector by the mask as it reads it (the same products, exact: a 0/1 mask times a value of the task vector's dtype),
/// so the plan computes, keeps and reads no masked copies: two sweeps (SCE's weights, then the output) each made three
/// chunk buffers of products for a mix that reads them once (`sce3`: 14% of the run's samples in those products).
/// The `mul`s are left without readers for `DeadValueElimination`; run it before this pass too, so that the
/// `sign_elect` `SignConsensusFusion` fused away no longer counts as a reader.
public struct SCEMaskFusion: GraphPass {
    public init() {}

    public var name: String { "sce-mask-fusion" }

    public func run(_ graph: Graph) -> Graph {
        let readers = graph.readerCounts
        return graph.rewritten { id, node, result in
            let original = graph[id]
            guard case .sceElectMerge(masked: false) = original.op, let first = original.operands.first,
                  let mask = Self.masking(first, in: graph)?.mask, case .varianceTopK = graph[mask].op else {
                return result.append(node)
            }
            var occurrences: [ValueID: Int] = [:]
            for operand in original.operands { occurrences[operand, default: 0] += 1 }
            var taskVectors: [ValueID] = []
            for operand in original.operands {
                guard let product = Self.masking(operand, in: graph), product.mask == mask,
                      readers[operand] == occurrences[operand],
                      graph[product.taskVector].type == graph[operand].type else {
                    return result.append(node)
                }
                taskVectors.append(product.taskVector)
            }
            // The new graph's names of the task vectors and the mask: the operands of the `mul`s already copied.
            var fused = node
            fused.op = .sceElectMerge(masked: true)
            let renamedMuls = node.operands.map { result[$0].operands }
            fused.operands = renamedMuls.map { $0[0] } + [renamedMuls[0][1]]
            return result.append(fused)
        }
    }

    /// The task vector and the mask of `value` when it is `mul(taskVector, mask)` (the order SCE lowers it in).
    private static func masking(_ value: ValueID, in graph: Graph) -> (taskVector: ValueID, mask: ValueID)? {
        let node = graph[value]
        guard node.op == .mul, node.operands.count == 2 else { return nil }
        return (node.operands[0], node.operands[1])
    }
}
