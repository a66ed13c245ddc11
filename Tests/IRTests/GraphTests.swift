import XCTest
@testable import IR

private let f32x23 = TensorType(dtype: .f32, shape: [2, 3])

/// Hash-consing, casts, stage labels and model registration of `Graph`.
final class GraphTests: XCTestCase {
    func testSameLoadTwiceIsOneNodeButTwoRequests() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/models/a"))
        let first = g.add(.load(model: m, tensor: "w"), type: f32x23)
        let second = g.add(.load(model: m, tensor: "w"), type: f32x23)
        XCTAssertEqual(first, second)
        XCTAssertEqual(first, ValueID(0))
        XCTAssertEqual(g.nodes.count, 1)
        XCTAssertEqual(g.loadRequests, 2)
        XCTAssertEqual(g.values, [ValueID(0)])
    }

    func testNonLoadNodesDoNotCountAsLoadRequests() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32x23)
        _ = g.add(.scale(2), [x], type: f32x23)
        _ = g.add(.scale(2), [x], type: f32x23)
        XCTAssertEqual(g.loadRequests, 1)
        XCTAssertEqual(g.nodes.count, 2)
    }

    func testSameComputeNodeIsShared() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32x23)
        let y = g.add(.load(model: m, tensor: "y"), type: f32x23)
        let s1 = g.add(.weightedSum([0.6, 0.4]), [x, y], type: f32x23)
        let s2 = g.add(.weightedSum([0.6, 0.4]), [x, y], type: f32x23)
        XCTAssertEqual(s1, s2)
        XCTAssertEqual(g.nodes.count, 3)
    }

    func testDifferentTypeOperandsOrAttributesGiveNewNodes() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32x23)
        let xHalf = g.add(.load(model: m, tensor: "x"), type: TensorType(dtype: .f16, shape: [2, 3]))
        let xOtherShape = g.add(.load(model: m, tensor: "x"), type: TensorType(dtype: .f32, shape: [3, 2]))
        let y = g.add(.load(model: m, tensor: "y"), type: f32x23)
        XCTAssertEqual(Set([x, xHalf, xOtherShape, y]).count, 4)

        let xy = g.add(.sub, [x, y], type: f32x23)
        let yx = g.add(.sub, [y, x], type: f32x23)
        XCTAssertNotEqual(xy, yx, "operand order is part of the identity")
        let w1 = g.add(.weightedSum([0.5, 0.5]), [x, y], type: f32x23)
        let w2 = g.add(.weightedSum([0.25, 0.75]), [x, y], type: f32x23)
        XCTAssertNotEqual(w1, w2, "attributes are part of the identity")
        let otherModel = g.addModel(ModelInput(name: "b", path: "/b"))
        let bx = g.add(.load(model: otherModel, tensor: "x"), type: f32x23)
        XCTAssertNotEqual(bx, x)
        XCTAssertEqual(g.nodes.count, 9)
        XCTAssertEqual(g.loadRequests, 5)
    }

    func testCastToSameDTypeReturnsValueItself() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32x23)
        XCTAssertEqual(g.cast(x, to: .f32), x)
        XCTAssertEqual(g.nodes.count, 1)
    }

    func testCastToOtherDTypeAddsOneSharedNode() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32x23)
        let c = g.cast(x, to: .bf16, stage: "s")
        XCTAssertNotEqual(c, x)
        XCTAssertEqual(g[c].op, .cast(.bf16))
        XCTAssertEqual(g[c].operands, [x])
        XCTAssertEqual(g[c].type, TensorType(dtype: .bf16, shape: [2, 3]))
        XCTAssertEqual(g[c].stages, ["s"])
        XCTAssertEqual(g.cast(x, to: .bf16), c)
        XCTAssertEqual(g.cast(c, to: .bf16), c)
        XCTAssertEqual(g.nodes.count, 2)
    }

    func testStageLabelsAccumulateOnSharedNode() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32x23, stage: "first")
        XCTAssertEqual(g[x].stages, ["first"])
        _ = g.add(.load(model: m, tensor: "x"), type: f32x23, stage: "second")
        _ = g.add(.load(model: m, tensor: "x"), type: f32x23, stage: "first")
        _ = g.add(.load(model: m, tensor: "x"), type: f32x23)
        XCTAssertEqual(g[x].stages, ["first", "second"])
        let unlabeled = g.add(.load(model: m, tensor: "y"), type: f32x23)
        XCTAssertEqual(g[unlabeled].stages, [])
    }

    func testNoteOfFirstRequestIsKept() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32x23, note: "first")
        _ = g.add(.load(model: m, tensor: "x"), type: f32x23, note: "second")
        XCTAssertEqual(g[x].note, "first")
    }

    func testAddModelDedupesByPath() {
        var g = Graph()
        XCTAssertEqual(g.addModel(ModelInput(name: "a", path: "/models/a")), 0)
        XCTAssertEqual(g.addModel(ModelInput(name: "b", path: "/models/b")), 1)
        XCTAssertEqual(g.addModel(ModelInput(name: "./a", path: "/models/a")), 0)
        XCTAssertEqual(g.addModel(ModelInput(name: "b", path: "/models/b")), 1)
        XCTAssertEqual(g.models, [ModelInput(name: "a", path: "/models/a"), ModelInput(name: "b", path: "/models/b")])
        // Same name, different path: a different model.
        XCTAssertEqual(g.addModel(ModelInput(name: "a", path: "/elsewhere/a")), 2)
    }

    func testOutputsAreKeptInOrder() {
        var g = Graph()
        let m = g.addModel(ModelInput(name: "a", path: "/a"))
        let x = g.add(.load(model: m, tensor: "x"), type: f32x23)
        g.addOutput(GraphOutput(name: "b", value: x, stage: "s"))
        g.addOutput(GraphOutput(name: "a", value: x))
        XCTAssertEqual(g.outputs.map(\.name), ["b", "a"])
        XCTAssertEqual(g.outputs[0].stage, "s")
    }

    func testValueIDOrderingAndDescription() {
        XCTAssertLessThan(ValueID(1), ValueID(2))
        XCTAssertEqual(ValueID(12).description, "%12")
    }

    func testTensorTypeSizes() {
        let t = TensorType(dtype: .bf16, shape: [4, 3, 2])
        XCTAssertEqual(t.elementCount, 24)
        XCTAssertEqual(t.byteCount, 48)
        XCTAssertEqual(t.rowCount, 4)
        XCTAssertEqual(t.description, "bf16[4,3,2]")
        let scalar = TensorType(dtype: .f32, shape: [])
        XCTAssertEqual(scalar.elementCount, 1)
        XCTAssertEqual(scalar.rowCount, 1)
        XCTAssertEqual(scalar.description, "f32[]")
    }
}
