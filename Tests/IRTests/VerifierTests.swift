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

    // MARK: casts and attributes

    func testRejectsCastWhoseAttributeDisagreesWithItsType() {
        var (g, x, _) = twoLoads()
        let bad = g.add(.cast(.bf16), [x], type: TensorType(dtype: .f16, shape: [2, 3]))
        assertRejects(g, .badCast(bad, "attribute bf16 but result type f16[2,3]"))
    }

    func testRejectsCastToTheSameDType() {
        var (g, x, _) = twoLoads()
        let bad = g.add(.cast(.f32), [x], type: t23)
        assertRejects(g, .badCast(bad, "operand %0 is already f32"))
    }

    func testRejectsAttributesOutOfRange() {
        let cases: [(Op, Int, String)] = [
            (.weightedSum([.nan, 1]), 2, "weights must be finite"),
            (.slerp(t: 1.5), 2, "t must be in [0, 1], found 1.5"),
            (.magnitudePrune(keep: 2..<9, rescale: false, ties: .index), 1, "kept ranks 2..<9 are outside the tensor's 6 elements"),
            (.randomPrune(density: -0.5, rescale: true, seed: 0, key: 0), 1, "density must be in [0, 1], found -0.5"),
            (.dellaPrune(density: 0.9, epsilon: 0.2, rescale: true, seed: 0, key: 0), 1,
             "density + epsilon must be in [0, 1]"),
            (.varianceTopK(fraction: 2), 1, "fraction must be in [0, 1], found 2"),
            (.tiesMerge(electWeights: [1], weights: [1, 1], normalize: true, lambda: 1), 2,
             "1 election weights for 2 merge weights"),
            (.disjointMerge(weights: [1], normalize: true, lambda: .infinity), 2, "lambda must be finite"),
            (.karcher(maxIter: -1, tol: 1e-5), 2, "max_iter must be ≥ 0"),
        ]
        for (op, operands, message) in cases {
            var (g, x, y) = twoLoads()
            let bad = g.add(op, Array([x, y].prefix(operands)), type: t23)
            do {
                try Verifier.verify(g)
                XCTFail("accepted \(op)")
            } catch {
                guard case .badAttribute(let v, let mnemonic, let text) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(v, bad)
                XCTAssertEqual(mnemonic, op.mnemonic)
                XCTAssertTrue(text.hasPrefix(message), "\(text) does not start with \(message)")
            }
        }
    }

    // MARK: schedules

    /// %0, %1 → %2 = sub → output "w", in one group and one shard.
    private func scheduled() -> (Graph, Schedule) {
        var (g, x, y) = twoLoads()
        let d = g.add(.sub, [x, y], type: t23)
        g.addOutput(GraphOutput(name: "w", value: d))
        let group = ChunkGroup(steps: [ScheduleStep(value: x, writes: [], frees: []),
                                       ScheduleStep(value: y, writes: [], frees: []),
                                       ScheduleStep(value: d, writes: [0], frees: [x, y, d])],
                               shape: [2, 3], rowElements: 3, chunkRows: 2,
                               sweeps: [Sweep(observers: [], computes: [0, 1, 2])], phases: [])
        return (g, Schedule(groups: [group], shards: [Shard(fileName: "model.safetensors", outputs: [0], byteCount: 24)],
                            budgetBytes: 1 << 20))
    }

    private func assertRejects(_ graph: Graph, _ schedule: Schedule, containing text: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        do {
            try Verifier.verify(graph, schedule)
            XCTFail("verifier accepted a bad schedule", file: file, line: line)
        } catch {
            XCTAssertTrue(error.description.contains(text), error.description, file: file, line: line)
        }
    }

    func testAcceptsWellFormedSchedule() throws {
        let (g, s) = scheduled()
        try Verifier.verify(g, s)
    }

    /// A concurrent group needs lanes and a window that holds it; the window stays within the budget.
    func testLanesNeedAWindowThatHoldsEachConcurrentGroupWithinTheBudget() throws {
        let (g, s) = scheduled()
        var lanes = s
        lanes.groups[0].concurrent = true
        lanes.groups[0].outputBytes = 12
        assertRejects(g, lanes, containing: "1 lane(s) with 1 concurrent group(s)")
        lanes.lanes = 2
        lanes.laneWindowBytes = lanes.groups[0].laneBytes - 1
        assertRejects(g, lanes, containing: "concurrent group 0 reserves")
        lanes.laneWindowBytes = 2 * lanes.groups[0].laneBytes
        try Verifier.verify(g, lanes)
        lanes.budgetBytes = lanes.laneWindowBytes - 1
        assertRejects(g, lanes, containing: "exceeds the budget")
    }

    func testRejectsOperandComputedAfterItsReader() {
        var (g, s) = scheduled()
        s.groups[0].steps.swapAt(1, 2)
        assertRejects(g, s, containing: "%2 reads %1, which is not live before it")
        (g, s) = scheduled()
        s.groups[0].steps[0].frees = [ValueID(0)]
        s.groups[0].steps[2].frees = [ValueID(1), ValueID(2)]
        assertRejects(g, s, containing: "%2 reads %0, which is not live before it")
    }

    func testRejectsLeakedBuffersAndDoubleFrees() {
        var (g, s) = scheduled()
        s.groups[0].steps[2].frees = [ValueID(0), ValueID(2)]
        assertRejects(g, s, containing: "never frees %1")
        (g, s) = scheduled()
        s.groups[0].steps[0].frees = [ValueID(1)]
        assertRejects(g, s, containing: "frees %1 at %0, before computing it or twice")
    }

    func testRejectsOutputsWrittenTwiceOrInNoShard() {
        var (g, s) = scheduled()
        s.groups.append(s.groups[0])
        assertRejects(g, s, containing: "is written 2 times")
        (g, s) = scheduled()
        s.shards = []
        assertRejects(g, s, containing: "is in 0 shards")
        (g, s) = scheduled()
        s.shards.append(s.shards[0])
        assertRejects(g, s, containing: "is in 2 shards")
    }

    func testRejectsSweepsNamingMissingSteps() {
        var (g, s) = scheduled()
        s.groups[0].sweeps.insert(Sweep(observers: [7], computes: [0]), at: 0)
        assertRejects(g, s, containing: "sweep 0 names step 7 of 3")
        (g, s) = scheduled()
        s.groups[0].sweeps = [Sweep(observers: [], computes: [0, 1])]
        assertRejects(g, s, containing: "output sweep does not compute %2")
        (g, s) = scheduled()
        s.groups[0].sweeps = []
        assertRejects(g, s, containing: "does not end with an output sweep")
    }
}

/// `vocab_gather`: a leaf that reads rows of its sources; the verifier checks its rows against its result and sources.
final class VocabularyGatherVerifierTests: XCTestCase {
    private func graph(_ gather: VocabularyGather, rows: Int) -> Graph {
        var g = Graph()
        _ = g.addModel(ModelInput(name: "a", path: "/a"))
        _ = g.addModel(ModelInput(name: "b", path: "/b"))
        let v = g.add(.vocabularyGather(gather), type: TensorType(dtype: .f32, shape: [rows, 4]))
        g.addOutput(GraphOutput(name: "embed", value: v))
        return g
    }

    private let sources = [GatherSource(model: 0, tensor: "e", type: TensorType(dtype: .f32, shape: [3, 4])),
                           GatherSource(model: 1, tensor: "e", type: TensorType(dtype: .bf16, shape: [5, 4]))]

    func testAGatherOfCopiesMeansZerosAndPaddingVerifiesAndPrints() throws {
        let gather = VocabularyGather(sources: sources, rows: [
            [RowPick(source: 0, row: 0)], [RowPick(source: 0, row: 2)], [RowPick(source: 1, row: 4)],
            [RowPick(source: 0, row: 1), RowPick(source: 1, row: 1)], [],
        ], paddingRows: 3)
        XCTAssertNoThrow(try Verifier.verify(graph(gather, rows: 8)))
        XCTAssertEqual(Op.vocabularyGather(gather).attributes, "(8 rows: 2 from @m0, 1 from @m1, 1 averaged, 1 zero, 3 padding)")
        XCTAssertEqual(gather.readBytes, 3 * 16 + 2 * 8)
    }

    func testRowsOutsideTheirSourceOrResultAreRejected() {
        let outside = VocabularyGather(sources: sources, rows: [[RowPick(source: 0, row: 3)]])
        XCTAssertThrowsError(try Verifier.verify(graph(outside, rows: 1))) { XCTAssertTrue("\($0)".contains("row 3 of source 0 is outside it")) }
        let short = VocabularyGather(sources: sources, rows: [[RowPick(source: 0, row: 0)]], paddingRows: 1)
        XCTAssertThrowsError(try Verifier.verify(graph(short, rows: 3))) { XCTAssertTrue("\($0)".contains("2 rows do not make a result")) }
        let wide = VocabularyGather(sources: [GatherSource(model: 0, tensor: "e", type: TensorType(dtype: .f32, shape: [3, 5]))],
                                    rows: [[RowPick(source: 0, row: 0)]])
        XCTAssertThrowsError(try Verifier.verify(graph(wide, rows: 1))) { XCTAssertTrue("\($0)".contains("its rows do not match")) }
        let unknown = VocabularyGather(sources: [GatherSource(model: 7, tensor: "e", type: TensorType(dtype: .f32, shape: [3, 4]))],
                                       rows: [[RowPick(source: 0, row: 0)]])
        XCTAssertThrowsError(try Verifier.verify(graph(unknown, rows: 1))) { XCTAssertTrue("\($0)".contains("@m7")) }
    }
}
