import XCTest
@testable import IR

/// The structural checks of `Verifier`.
final class VerifierTests: XCTestCase {
    private let t23 = TensorType(dtype: .f32, shape: [2, 3])
    private let t32 = TensorType(dtype: .f32, shape: [3, 2])

    /// Two models with one `[2,3]` tensor each: %0 (model 0) and %1 (model 1).
    private func twoLoads() -> (Graph, ValueID, ValueID) {
        var g = Graph()
        let a = g.addModel(ModelInput(name: "a", path: "/a"))
        let b = g.addModel(ModelInput(name: "b", path: "/b"))
        let x = g.add(.load(model: a, tensor: "w"), type: t23)
        let y = g.add(.load(model: b, tensor: "w"), type: t23)
        return (g, x, y)
    }

    private func assertRejects(_ graph: Graph, _ expected: VerifierError,
                               file: StaticString = #filePath, line: UInt = #line) {
        do {
            try Verifier.verify(graph)
            XCTFail("verifier accepted a bad graph", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }

    func testAcceptsWellFormedGraph() throws {
        var (g, x, y) = twoLoads()
        let delta = g.add(.sub, [y, x], type: t23)
        let mix = g.add(.weightedSum([0.5]), [delta], type: t23)
        let sum = g.add(.add, [x, mix], type: t23)
        let half = g.cast(sum, to: .bf16)
        let scaled = g.add(.scale(2), [half], type: TensorType(dtype: .bf16, shape: [2, 3]))
        let sl = g.add(.slerp(t: 0.3), [x, y], type: t23)
        let ms = g.add(.modelStock(filterWise: true), [x, y, sl], type: t23)
        g.addOutput(GraphOutput(name: "w", value: scaled))
        g.addOutput(GraphOutput(name: "v", value: ms))
        try Verifier.verify(g)
    }

    func testAcceptsEmptyGraph() throws {
        try Verifier.verify(Graph())
    }

    func testRejectsWrongArityOfBinaryOp() {
        var (g, x, _) = twoLoads()
        let bad = g.add(.sub, [x], type: t23)
        assertRejects(g, .wrongArity(bad, op: "sub", expected: 2, found: 1))
    }

    func testRejectsOperandsOnLoad() {
        var (g, x, _) = twoLoads()
        let bad = g.add(.load(model: 0, tensor: "v"), [x], type: t23)
        assertRejects(g, .wrongArity(bad, op: "load", expected: 0, found: 1))
    }

    func testRejectsVariadicOpWithoutOperands() {
        var (g, _, _) = twoLoads()
        let bad = g.add(.modelStock(filterWise: false), [], type: t23)
        assertRejects(g, .wrongArity(bad, op: "model_stock", expected: 1, found: 0))
    }

    func testRejectsShapeMismatchBetweenOperandAndResult() {
        var (g, x, _) = twoLoads()
        let bad = g.add(.cast(.f16), [x], type: TensorType(dtype: .f16, shape: [3, 2]))
        assertRejects(g, .shapeMismatch(bad, op: "cast"))
    }

    func testRejectsShapeMismatchBetweenOperands() {
        var (g, x, _) = twoLoads()
        let z = g.add(.load(model: 1, tensor: "z"), type: t32)
        let bad = g.add(.add, [x, z], type: t23)
        assertRejects(g, .shapeMismatch(bad, op: "add"))
    }

    func testRejectsLoadFromUnknownModel() {
        var (g, _, _) = twoLoads()
        let bad = g.add(.load(model: 2, tensor: "w"), type: t23)
        assertRejects(g, .unknownModel(bad, model: 2))
        XCTAssertEqual(VerifierError.unknownModel(bad, model: 2).description,
                       "IR verifier: %2 loads from unknown model @m2")
    }

    func testRejectsWeightedSumWithWrongCoefficientCount() {
        var (g, x, y) = twoLoads()
        let bad = g.add(.weightedSum([1]), [x, y], type: t23)
        assertRejects(g, .wrongArity(bad, op: "weighted_sum", expected: 1, found: 2))

        var (g2, x2, y2) = twoLoads()
        let bad2 = g2.add(.weightedSum([0.2, 0.3, 0.5]), [x2, y2], type: t23)
        assertRejects(g2, .wrongArity(bad2, op: "weighted_sum", expected: 3, found: 2))
    }

    func testRejectsForwardReference() {
        var (g, x, _) = twoLoads()
        // %2 refers to %3, defined after it.
        let bad = g.add(.add, [x, ValueID(3)], type: t23)
        _ = g.add(.scale(1), [x], type: t23)
        assertRejects(g, .forwardReference(bad, operand: ValueID(3)))
    }

    func testRejectsSelfReference() {
        var (g, x, _) = twoLoads()
        let bad = g.add(.add, [x, ValueID(2)], type: t23)
        XCTAssertEqual(bad, ValueID(2))
        assertRejects(g, .forwardReference(bad, operand: bad))
    }

    func testRejectsDuplicateOutputNames() {
        var (g, x, y) = twoLoads()
        g.addOutput(GraphOutput(name: "w", value: x))
        g.addOutput(GraphOutput(name: "v", value: y))
        g.addOutput(GraphOutput(name: "w", value: y))
        assertRejects(g, .duplicateOutput("w"))
        XCTAssertEqual(VerifierError.duplicateOutput("w").description, "IR verifier: output \"w\" is defined twice")
    }

    func testAcceptsTwoOutputsSharingAValue() throws {
        var (g, x, _) = twoLoads()
        g.addOutput(GraphOutput(name: "w", value: x))
        g.addOutput(GraphOutput(name: "tied", value: x))
        try Verifier.verify(g)
    }

    func testRejectsOutputOfUndefinedValue() {
        var (g, x, _) = twoLoads()
        g.addOutput(GraphOutput(name: "w", value: x))
        g.addOutput(GraphOutput(name: "ghost", value: ValueID(7)))
        assertRejects(g, .badOutput("ghost", ValueID(7)))
    }

    func testErrorDescriptions() {
        XCTAssertEqual(VerifierError.wrongArity(ValueID(4), op: "sub", expected: 2, found: 1).description,
                       "IR verifier: %4 = sub takes 2 operands, has 1")
        XCTAssertEqual(VerifierError.forwardReference(ValueID(1), operand: ValueID(3)).description,
                       "IR verifier: %1 uses %3, which is not defined before it")
    }
}
