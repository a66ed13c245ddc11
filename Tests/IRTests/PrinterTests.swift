import XCTest
@testable import IR

/// The `--dump-ir` text rendered by `Printer`.
final class PrinterTests: XCTestCase {
    /// Two models, a linear merge of tensor "w" (shard 1) and a copy of tensor "n" (shard 2).
    private func smallGraph() -> (Graph, Schedule) {
        var g = Graph()
        let a = g.addModel(ModelInput(name: "models/a", path: "/abs/models/a"))
        let b = g.addModel(ModelInput(name: "/abs/b", path: "/abs/b"))
        let t = TensorType(dtype: .f32, shape: [2, 3])
        let x = g.add(.load(model: a, tensor: "w"), type: t)
        let y = g.add(.load(model: b, tensor: "w"), type: t)
        _ = g.add(.load(model: a, tensor: "w"), type: t)
        let mix = g.add(.weightedSum([0.6, 0.4]), [x, y], type: t)
        let n = g.add(.load(model: a, tensor: "n"), type: TensorType(dtype: .f32, shape: [3]))
        g.addOutput(GraphOutput(name: "w", value: mix))
        g.addOutput(GraphOutput(name: "n", value: n))
        let schedule = testSchedule(g, steps: [
                ScheduleStep(value: x, writes: [], frees: []),
                ScheduleStep(value: y, writes: [], frees: []),
                ScheduleStep(value: mix, writes: [0], frees: [x, y, mix]),
                ScheduleStep(value: n, writes: [1], frees: [n]),
            ],
            shards: [
                Shard(fileName: "model-00001-of-00002.safetensors", outputs: [0], byteCount: 24),
                Shard(fileName: "model-00002-of-00002.safetensors", outputs: [1], byteCount: 12),
            ])
        return (g, schedule)
    }

    func testFullTextOfSmallGraph() {
        let (g, schedule) = smallGraph()
        let text = Printer(graph: g, schedule: schedule, header: ["plan for t.yml"]).render()
        let expected = """
            // plan for t.yml
            // @m0 = models/a  (/abs/models/a)
            // @m1 = /abs/b

            tensor "w" : f32[2,3]
              // chunks: 2 of 2 rows (1 per pass); 2 live buffers of 24 B; kernel state 0 B; peak 60 B
              %0 = load @m0 "w" : f32[2,3]
              %1 = load @m1 "w" : f32[2,3]
              %2 = weighted_sum(0.6, 0.4) %0, %1 : f32[2,3]
              out "w" shard 1 = %2
              free %0 %1 %2

            tensor "n" : f32[3]
              // chunks: whole tensor (1 per pass); 2 live buffers of 12 B; kernel state 0 B; peak 30 B
              %3 = load @m0 "n" : f32[3]
              out "n" shard 2 = %3
              free %3

            // summary: 4 nodes; 4 loads requested, 3 unique; 60 B to read
            // output: 2 tensors, 36 B in 2 shard(s): model-00001-of-00002.safetensors, model-00002-of-00002.safetensors
            // schedule: 2 chunked groups, 4 steps per chunk pass
            // memory: budget 1.0 MiB; predicted peak 60 B at tensor "w"

            """
        XCTAssertEqual(text, expected)
    }

    func testKeyLinesOfSmallGraph() {
        let (g, schedule) = smallGraph()
        let lines = Printer(graph: g, schedule: schedule).render().split(separator: "\n", omittingEmptySubsequences: false)
            .map(String.init)
        XCTAssertTrue(lines.contains("  %2 = weighted_sum(0.6, 0.4) %0, %1 : f32[2,3]"))
        XCTAssertTrue(lines.contains("tensor \"w\" : f32[2,3]"))
        XCTAssertTrue(lines.contains("  out \"n\" shard 2 = %3"))
        XCTAssertTrue(lines.contains("  free %0 %1 %2"))
        XCTAssertEqual(lines.first, "// @m0 = models/a  (/abs/models/a)", "no header lines were given")
        XCTAssertTrue(lines.contains { $0.hasPrefix("// summary: 4 nodes; 4 loads requested, 3 unique") })
    }

    func testNotesAndStageCommentsArePaddedToColumn72() {
        var g = Graph()
        let a = g.addModel(ModelInput(name: "a", path: "a"))
        let t = TensorType(dtype: .bf16, shape: [2])
        let x = g.add(.load(model: a, tensor: "x"), type: t, stage: "ab")
        _ = g.add(.load(model: a, tensor: "x"), type: t, stage: "<final>")
        let y = g.add(.load(model: a, tensor: "y"), type: t, stage: "ab")
        let sum = g.add(.add, [x, y], type: t, stage: "<final>", note: "task_arithmetic base")
        let half = g.cast(sum, to: .f16, stage: "<final>")
        let sc = g.add(.scale(0.5), [half], type: TensorType(dtype: .f16, shape: [2]), stage: "<final>")
        g.addOutput(GraphOutput(name: "x", value: sc))
        let schedule = testSchedule(g, steps: [
                ScheduleStep(value: x, writes: [], frees: []),
                ScheduleStep(value: y, writes: [], frees: []),
                ScheduleStep(value: sum, writes: [], frees: [x, y]),
                ScheduleStep(value: half, writes: [], frees: [sum]),
                ScheduleStep(value: sc, writes: [0], frees: [half, sc]),
            ],
            shards: [Shard(fileName: "model.safetensors", outputs: [0], byteCount: 4)])
        let text = Printer(graph: g, schedule: schedule).render()
        func padded(_ s: String, _ comment: String) -> String {
            s + String(repeating: " ", count: 72 - s.count) + "  // " + comment
        }
        let expected = [
            "// @m0 = a",
            "",
            "tensor \"x\" : f16[2]",
            "  // chunks: whole tensor (1 per pass); 2 live buffers of 8 B; kernel state 0 B; peak 20 B",
            padded("  %0 = load @m0 \"x\" : bf16[2]", "used by ab, <final>"),
            padded("  %1 = load @m0 \"y\" : bf16[2]", "stage ab"),
            padded("  %2 = add %0, %1 : bf16[2]", "task_arithmetic base; stage <final>"),
            padded("  %3 = cast(f16) %2 : f16[2]", "stage <final>"),
            padded("  %4 = scale(0.5) %3 : f16[2]", "stage <final>"),
            "  out \"x\" shard 1 = %4",
            "  free %0 %1 %2 %3 %4",
            "",
            "// summary: 5 nodes; 3 loads requested, 2 unique; 8 B to read",
            "// output: 1 tensors, 4 B in 1 shard(s): model.safetensors",
            "// schedule: 1 chunked groups, 5 steps per chunk pass",
            "// memory: budget 1.0 MiB; predicted peak 20 B at tensor \"x\"",
            "",
        ].joined(separator: "\n")
        XCTAssertEqual(text, expected)
    }

    func testSingleStageGraphHasNoStageComments() {
        var g = Graph()
        let a = g.addModel(ModelInput(name: "a", path: "a"))
        let x = g.add(.load(model: a, tensor: "x"), type: TensorType(dtype: .f32, shape: [1]), stage: "only")
        g.addOutput(GraphOutput(name: "x", value: x))
        let schedule = testSchedule(g, steps: [ScheduleStep(value: x, writes: [0], frees: [x])],
                                shards: [Shard(fileName: "model.safetensors", outputs: [0], byteCount: 4)])
        let text = Printer(graph: g, schedule: schedule).render()
        XCTAssertTrue(text.contains("\n  %0 = load @m0 \"x\" : f32[1]\n"), text)
        XCTAssertFalse(text.contains("//  "), text)
        XCTAssertFalse(text.contains("stage only"), text)
    }

    func testOutputsSharingAStepAreAllWrittenUnderTheFirstName() {
        var g = Graph()
        let a = g.addModel(ModelInput(name: "a", path: "a"))
        let x = g.add(.load(model: a, tensor: "emb"), type: TensorType(dtype: .f32, shape: [2]))
        g.addOutput(GraphOutput(name: "emb", value: x))
        g.addOutput(GraphOutput(name: "head", value: x))
        let schedule = testSchedule(g, steps: [ScheduleStep(value: x, writes: [0, 1], frees: [x])],
                                shards: [Shard(fileName: "model.safetensors", outputs: [0, 1], byteCount: 16)])
        let text = Printer(graph: g, schedule: schedule).render()
        XCTAssertTrue(text.contains("""

            tensor "emb" : f32[2]
              // chunks: whole tensor (1 per pass); 2 live buffers of 8 B; kernel state 0 B; peak 20 B
              %0 = load @m0 "emb" : f32[2]
              out "emb" shard 1 = %0
              out "head" shard 1 = %0
              free %0

            """), text)
        XCTAssertFalse(text.contains("tensor \"head\""))
    }

    func testFreeLineListsEveryBufferFreedSinceThePreviousWriteSorted() {
        var g = Graph()
        let a = g.addModel(ModelInput(name: "a", path: "a"))
        let t = TensorType(dtype: .f32, shape: [2])
        let x = g.add(.load(model: a, tensor: "x"), type: t)
        let y = g.add(.load(model: a, tensor: "y"), type: t)
        let scaled = g.add(.scale(2), [y], type: t)
        let sum = g.add(.add, [x, scaled], type: t)
        g.addOutput(GraphOutput(name: "s", value: sum))
        // y dies one step before the write, the others at it.
        let schedule = testSchedule(g, steps: [
                ScheduleStep(value: y, writes: [], frees: []),
                ScheduleStep(value: scaled, writes: [], frees: [y]),
                ScheduleStep(value: x, writes: [], frees: []),
                ScheduleStep(value: sum, writes: [0], frees: [x, scaled, sum]),
            ],
            shards: [Shard(fileName: "model.safetensors", outputs: [0], byteCount: 8)])
        let lines = Printer(graph: g, schedule: schedule).render().split(separator: "\n", omittingEmptySubsequences: false)
            .map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("  free") }, ["  free %0 %1 %2 %3"])
        let body = lines.drop { !$0.hasPrefix("tensor") }.prefix { !$0.isEmpty }
        XCTAssertEqual(Array(body), [
            "tensor \"s\" : f32[2]",
            "  // chunks: whole tensor (1 per pass); 2 live buffers of 8 B; kernel state 0 B; peak 20 B",
            "  %1 = load @m0 \"y\" : f32[2]",
            "  %2 = scale(2) %1 : f32[2]",
            "  %0 = load @m0 \"x\" : f32[2]",
            "  %3 = add %0, %2 : f32[2]",
            "  out \"s\" shard 1 = %3",
            "  free %0 %1 %2 %3",
        ])
    }

    /// With outputs in several directories (`--all-stages`), each `out` line names its directory, as the header's
    /// `output:` lines do; with one directory the lines stay as they were.
    func testOutputsOfSeveralDirectoriesNameTheirDirectory() {
        func outLines(stageDirectory: String) -> [String] {
            var g = Graph()
            let a = g.addModel(ModelInput(name: "a", path: "a"))
            let t = TensorType(dtype: .f32, shape: [2])
            let x = g.add(.load(model: a, tensor: "x"), type: t, stage: "first")
            let y = g.add(.scale(2), [x], type: t, stage: "<final>")
            g.addOutput(GraphOutput(name: "x", value: x, stage: "first", directory: stageDirectory))
            g.addOutput(GraphOutput(name: "x", value: y, stage: "<final>"))
            let schedule = testSchedule(g, steps: [ScheduleStep(value: x, writes: [0], frees: []),
                                                   ScheduleStep(value: y, writes: [1], frees: [x, y])],
                                        shards: [Shard(fileName: "model.safetensors", outputs: [0], byteCount: 8),
                                                 Shard(fileName: "model.safetensors", outputs: [1], byteCount: 8)])
            return Printer(graph: g, schedule: schedule).render().split(separator: "\n").map(String.init)
                .filter { $0.hasPrefix("  out") }
        }
        XCTAssertEqual(outLines(stageDirectory: "first"), [
            "  out \"x\" shard 1 = %0  // → OUT_DIR/first",
            "  out \"x\" shard 2 = %1  // → OUT_DIR/",
        ])
        XCTAssertEqual(outLines(stageDirectory: ""), ["  out \"x\" shard 1 = %0", "  out \"x\" shard 2 = %1"])
    }

    func testStepWithoutFreesPrintsNoFreeLine() {
        var g = Graph()
        let a = g.addModel(ModelInput(name: "a", path: "a"))
        let x = g.add(.load(model: a, tensor: "x"), type: TensorType(dtype: .f32, shape: [2]))
        g.addOutput(GraphOutput(name: "x", value: x))
        let schedule = testSchedule(g, steps: [ScheduleStep(value: x, writes: [0], frees: [])],
                                shards: [Shard(fileName: "model.safetensors", outputs: [0], byteCount: 8)])
        XCTAssertFalse(Printer(graph: g, schedule: schedule).render().contains("free"))
    }

    func testFormatBytes() {
        XCTAssertEqual(formatBytes(0), "0 B")
        XCTAssertEqual(formatBytes(1023), "1023 B")
        XCTAssertEqual(formatBytes(1024), "1.0 KiB")
        XCTAssertEqual(formatBytes(1536), "1.5 KiB")
        XCTAssertEqual(formatBytes(3 * 1024 * 1024), "3.0 MiB")
        // With the count beside it, once only where both would say the same.
        XCTAssertEqual(formatByteCount(1), "1 byte")
        XCTAssertEqual(formatByteCount(1023), "1023 bytes")
        XCTAssertEqual(formatByteCount(1024), "1.0 KiB (1024 bytes)")
        XCTAssertEqual(formatByteCount(512 << 20), "512.0 MiB (536870912 bytes)")
        XCTAssertEqual(formatBytes(5 * 1024 * 1024 * 1024), "5.0 GiB")
    }

    func testShardOfOutputIsOneBased() {
        let schedule = testSchedule(Graph(), steps: [], shards: [
            Shard(fileName: "1", outputs: [0, 1], byteCount: 0),
            Shard(fileName: "2", outputs: [2], byteCount: 0),
        ])
        XCTAssertEqual(schedule.shardOfOutput, [0: 1, 1: 1, 2: 2])
    }
}

/// A schedule of `steps`, one chunk group per written output, whole tensors per chunk, two live buffers.
func testSchedule(_ g: Graph, steps: [ScheduleStep], shards: [Shard]) -> Schedule {
    var groups: [ChunkGroup] = []
    var pending: [ScheduleStep] = []
    for step in steps {
        pending.append(step)
        guard let o = step.writes.first else { continue }
        let shape = g[g.outputs[o].value].type.shape
        let count = shape.reduce(1, *)
        groups.append(ChunkGroup(steps: pending, shape: shape, rowElements: shape.count >= 2 ? count / shape[0] : count,
                                 chunkRows: shape.first ?? 1,
                                 sweeps: [Sweep(observers: [], computes: Array(pending.indices))],
                                 phases: [PhaseMemory(buffers: 2, stagingBytesPerElement: 2, stateBytes: 0, wholeValues: 0)]))
        pending = []
    }
    return Schedule(groups: groups, shards: shards, budgetBytes: 1 << 20)
}
