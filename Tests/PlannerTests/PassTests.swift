import IR
@testable import Planner
import XCTest

/// The rewrites of the pass pipeline.
final class PassTests: XCTestCase {
    private let t = TensorType(dtype: .f32, shape: [4, 4])

    /// Task vectors %2 (model 1 − base) and %3 (model 2 − base) of two fine-tunes over a base.
    private func taskVectors() -> (Graph, ValueID, ValueID, ValueID) {
        var g = Graph()
        let base = g.add(.load(model: g.addModel(ModelInput(name: "b", path: "/b")), tensor: "w"), type: t)
        let a = g.add(.load(model: g.addModel(ModelInput(name: "a", path: "/a")), tensor: "w"), type: t)
        let c = g.add(.load(model: g.addModel(ModelInput(name: "c", path: "/c")), tensor: "w"), type: t)
        let x = g.add(.sub, [a, base], type: t)
        let y = g.add(.sub, [c, base], type: t)
        return (g, base, x, y)
    }

    private func pipeline(_ g: Graph) throws -> Graph {
        var graph = g
        for pass in Compiler.passes {
            graph = pass.run(graph)
            try Verifier.verify(graph)
        }
        return graph
    }

    func testSignElectionReadOnlyByItsMergeIsFused() throws {
        var (g, base, x, y) = taskVectors()
        let sign = g.add(.signElect(weights: [0.6, 0.4]), [x, y], type: t, stage: "s", note: nil)
        let merged = g.add(.disjointMerge(weights: [0.6, 0.4], normalize: true, lambda: 0.5), [sign, x, y], type: t,
                           stage: "s", note: "ties")
        let result = g.add(.add, [base, merged], type: t)
        g.addOutput(GraphOutput(name: "w", value: result))
        let fused = try pipeline(g)
        XCTAssertEqual(fused.nodes.count, g.nodes.count - 1, "the election is gone")
        XCTAssertFalse(fused.nodes.contains { $0.op.mnemonic == "sign_elect" || $0.op.mnemonic == "disjoint_merge" })
        let node = try XCTUnwrap(fused.nodes.first { $0.op.mnemonic == "ties_merge" })
        XCTAssertEqual(node.op, .tiesMerge(electWeights: [0.6, 0.4], weights: [0.6, 0.4], normalize: true, lambda: 0.5))
        XCTAssertEqual(node.operands.map { fused[$0].op }, [.sub, .sub])
        XCTAssertEqual(node.note, "ties")
        XCTAssertEqual(node.stages, ["s"])
        XCTAssertEqual(fused.loadRequests, g.loadRequests)
        XCTAssertEqual(fused[fused.outputs[0].value].operands, [ValueID(0), ValueID(5)], "renumbered without the election")
    }

    func testSharedOrForeignElectionIsNotFused() throws {
        // Read by a second node: kept.
        var (g, _, x, y) = taskVectors()
        let sign = g.add(.signElect(weights: [1, 1]), [x, y], type: t)
        let merged = g.add(.disjointMerge(weights: [1, 1], normalize: false, lambda: 1), [sign, x, y], type: t)
        g.addOutput(GraphOutput(name: "w", value: merged))
        g.addOutput(GraphOutput(name: "sign", value: sign))
        XCTAssertEqual(try pipeline(g).nodes.map(\.op.mnemonic), g.nodes.map(\.op.mnemonic))
        // Elected from other task vectors than it merges (as SCE does with masked ones): kept.
        var (h, _, p, q) = taskVectors()
        let other = h.add(.scale(2), [p], type: t)
        let s2 = h.add(.signElect(weights: [1, 1]), [other, q], type: t)
        let merged2 = h.add(.disjointMerge(weights: [1, 1], normalize: false, lambda: 1), [s2, p, q], type: t)
        h.addOutput(GraphOutput(name: "w", value: merged2))
        XCTAssertEqual(try pipeline(h).nodes.map(\.op.mnemonic), h.nodes.map(\.op.mnemonic))
    }

    func testSCEElectionOfWeightsOneReadOnlyByItsMixIsFused() throws {
        var (g, base, x, y) = taskVectors()
        let sign = g.add(.signElect(weights: [1, 1]), [x, y], type: t)
        let merged = g.add(.sceMerge, [sign, x, y], type: t, stage: "s", note: "sce")
        g.addOutput(GraphOutput(name: "w", value: g.add(.add, [base, merged], type: t)))
        let fused = try pipeline(g)
        XCTAssertEqual(fused.nodes.map(\.op.mnemonic), ["load", "load", "load", "sub", "sub", "sce_elect_merge", "add"])
        let node = try XCTUnwrap(fused.nodes.first { $0.op == .sceElectMerge(masked: false) })
        XCTAssertEqual(node.operands.map { fused[$0].op }, [.sub, .sub])
        XCTAssertEqual(node.note, "sce")
        XCTAssertEqual(node.stages, ["s"])
    }

    /// SCE as lowered with `select_topk` < 1: task vectors times one `variance_topk` mask, elected and mixed.
    private func maskedSCE() -> (Graph, base: ValueID, x: ValueID, y: ValueID, mask: ValueID, mx: ValueID, my: ValueID) {
        var (g, base, x, y) = taskVectors()
        let variance = g.add(.variance, [x, y], type: t)
        let mask = g.add(.varianceTopK(fraction: 0.1), [variance], type: t)
        let mx = g.add(.mul, [x, mask], type: t), my = g.add(.mul, [y, mask], type: t)
        return (g, base, x, y, mask, mx, my)
    }

    func testSCEMaskProductsReadOnlyByTheMixAreFused() throws {
        var (g, base, x, y, mask, mx, my) = maskedSCE()
        let sign = g.add(.signElect(weights: [1, 1]), [mx, my], type: t)
        let merged = g.add(.sceMerge, [sign, mx, my], type: t, stage: "s", note: "sce")
        g.addOutput(GraphOutput(name: "w", value: g.add(.add, [base, merged], type: t)))
        let fused = try pipeline(g)
        XCTAssertEqual(fused.nodes.map(\.op.mnemonic),
                       ["load", "load", "load", "sub", "sub", "variance", "variance_topk", "sce_elect_merge", "add"])
        let node = try XCTUnwrap(fused.nodes.first { $0.op == .sceElectMerge(masked: true) })
        XCTAssertEqual(node.operands.map { fused[$0].op }, [.sub, .sub, .varianceTopK(fraction: 0.1)])
        XCTAssertEqual(node.operands, [x, y, mask].map { ValueID($0.index) }, "the task vectors in order, then the mask")
        XCTAssertEqual(node.note, "sce")
        XCTAssertEqual(node.stages, ["s"])
        XCTAssertEqual(node.op.attributes, "(masked)")
    }

    func testSCEMaskProductsReadElsewhereOrOfOtherMasksAreNotFused() throws {
        // A product also written out: kept, so the mix stays unmasked.
        var (g, _, _, _, _, mx, my) = maskedSCE()
        let sign = g.add(.signElect(weights: [1, 1]), [mx, my], type: t)
        g.addOutput(GraphOutput(name: "w", value: g.add(.sceMerge, [sign, mx, my], type: t)))
        g.addOutput(GraphOutput(name: "masked", value: mx))
        XCTAssertNotNil(try pipeline(g).nodes.first { $0.op == .sceElectMerge(masked: false) })
        // Two different masks.
        var (h, _, x, _, mask, hx, _) = maskedSCE()
        let other = h.add(.varianceTopK(fraction: 0.5), [h.add(.variance, [x, x], type: t)], type: t)
        let hy = h.add(.mul, [x, other], type: t)
        _ = mask
        let s2 = h.add(.signElect(weights: [1, 1]), [hx, hy], type: t)
        h.addOutput(GraphOutput(name: "w", value: h.add(.sceMerge, [s2, hx, hy], type: t)))
        XCTAssertNotNil(try pipeline(h).nodes.first { $0.op == .sceElectMerge(masked: false) })
        // A product by something other than SCE's mask.
        var (k, _, u, v) = taskVectors()
        let ku = k.add(.mul, [u, v], type: t), kv = k.add(.mul, [v, v], type: t)
        let s3 = k.add(.signElect(weights: [1, 1]), [ku, kv], type: t)
        k.addOutput(GraphOutput(name: "w", value: k.add(.sceMerge, [s3, ku, kv], type: t)))
        XCTAssertNotNil(try pipeline(k).nodes.first { $0.op == .sceElectMerge(masked: false) })
    }

    func testSCEElectionOfOtherWeightsOrSharedIsNotFused() throws {
        // Weighted election: the fused op elects from the plain sum only.
        var (g, _, x, y) = taskVectors()
        let weighted = g.add(.signElect(weights: [1, 2]), [x, y], type: t)
        g.addOutput(GraphOutput(name: "w", value: g.add(.sceMerge, [weighted, x, y], type: t)))
        XCTAssertEqual(try pipeline(g).nodes.map(\.op.mnemonic), g.nodes.map(\.op.mnemonic))
        // Read by a second node.
        var (h, _, p, q) = taskVectors()
        let shared = h.add(.signElect(weights: [1, 1]), [p, q], type: t)
        h.addOutput(GraphOutput(name: "w", value: h.add(.sceMerge, [shared, p, q], type: t)))
        h.addOutput(GraphOutput(name: "sign", value: shared))
        XCTAssertEqual(try pipeline(h).nodes.map(\.op.mnemonic), h.nodes.map(\.op.mnemonic))
        // Elected from other task vectors than it mixes.
        var (k, _, u, v) = taskVectors()
        let other = k.add(.signElect(weights: [1, 1]), [v, u], type: t)
        k.addOutput(GraphOutput(name: "w", value: k.add(.sceMerge, [other, u, v], type: t)))
        XCTAssertEqual(try pipeline(k).nodes.map(\.op.mnemonic), k.nodes.map(\.op.mnemonic))
    }

    func testDeadValuesAreDroppedAndTheRestRenumbered() throws {
        var (g, base, x, _) = taskVectors()
        let sum = g.add(.add, [base, x], type: t)
        g.addOutput(GraphOutput(name: "w", value: sum))
        let pruned = DeadValueElimination().run(g)
        XCTAssertEqual(pruned.nodes.map(\.op.mnemonic), ["load", "load", "sub", "add"])
        XCTAssertEqual(pruned.outputs[0].value, ValueID(3))
        XCTAssertEqual(pruned.models.count, 3, "models keep their numbers")
        try Verifier.verify(pruned)
    }
}
