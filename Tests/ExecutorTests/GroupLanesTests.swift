import Dispatch
import Foundation
import IR
import Synchronization
import XCTest

@testable import Executor

/// `GroupLanes` runs concurrent groups beside each other within the lanes' window, a group that is not concurrent
/// alone on all threads, and writes every output in schedule order whatever order the groups finish in; the
/// earliest failed group's error is thrown.
final class GroupLanesTests: XCTestCase {
    /// What the callbacks saw, in order.
    private enum Event: Equatable {
        case started(Int)
        case finished(Int)
        case write(output: Int, offset: Int, values: [Float])
        case written(Int)
    }

    private final class Log: Sendable {
        let events = Mutex<[Event]>([])
        let threads = Mutex<[Int: Int]>([:])

        func add(_ event: Event) { events.withLock { $0.append(event) } }
        var all: [Event] { events.withLock { $0 } }
        func finished(_ g: Int) -> Bool { all.contains(.finished(g)) }
    }

    /// Groups of 32 f32 elements (4 rows of 8) each writing output `g`, reserving `laneBytes` bytes while they run.
    private func schedule(groups: Int, concurrent: (Int) -> Bool, laneBytes: Int, window: Int) -> Schedule {
        let groups = (0..<groups).map { g in
            var group = ChunkGroup(steps: [ScheduleStep(value: ValueID(g), writes: [g], frees: [])], shape: [4, 8],
                                   rowElements: 8, chunkRows: 1,
                                   phases: [PhaseMemory(buffers: 0, stagingBytesPerElement: 0,
                                                        stateBytes: laneBytes - 128, wholeValues: 0)])
            group.outputBytes = 128
            group.concurrent = concurrent(g)
            return group
        }
        return Schedule(groups: groups, shards: [], budgetBytes: Int.max / 4, threads: 2, lanes: 2,
                        laneWindowBytes: window)
    }

    /// Runs `schedule`'s groups: group `g` emits its 32 elements (value 100·g + index) in 4 chunks after `wait(g)`;
    /// `fail(g)` makes it throw instead.
    private func run(_ schedule: Schedule, memory: MemoryAccount, log: Log, wait: @escaping (Int) -> Void = { _ in },
                     fail: @escaping (Int) -> Bool = { _ in false }) throws(ExecutionError) {
        var types: [Int: TensorType] = [:]
        for g in schedule.groups.indices { types[g] = TensorType(dtype: .f32, shape: [4, 8]) }
        let callbacks = GroupLanes.Callbacks(
            open: { _ in },
            run: { g, parallel, emit throws(ExecutionError) in
                log.add(.started(g))
                log.threads.withLock { $0[g] = parallel.threads }
                wait(g)
                if fail(g) { throw .planMismatch("group \(g) failed") }
                for chunk in 0..<4 {
                    let values = (0..<8).map { Float(100 * g + 8 * chunk + $0) }
                    try values.withUnsafeBufferPointer { (v) throws(ExecutionError) in
                        try emit(g, (8 * chunk)..<(8 * chunk + 8), v.baseAddress!)
                    }
                }
                log.add(.finished(g))
            },
            write: { o, offset, chunk in
                switch chunk {
                case .floats(let values): log.add(.write(output: o, offset: offset, values: Array(values)))
                case .bytes(let bytes): log.add(.write(output: o, offset: offset, values: Array(bytes.bindMemory(to: Float.self))))
                }
            },
            written: { g in log.add(.written(g)) })
        try GroupLanes(schedule: schedule, order: Array(schedule.groups.indices), memory: memory, outputTypes: types,
                       callbacks: callbacks).run()
    }

    /// Waits (up to 10 s) until `condition` holds.
    private static func waitUntil(_ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(10)
        while !condition(), Date() < deadline { usleep(1000) }
    }

    func testGroupsRunBesideASlowGroupAndAreWrittenInScheduleOrder() throws {
        let log = Log()
        let memory = MemoryAccount()
        // Group 0 finishes only once groups 1–4 have: they must have run beside it. Group 5 runs alone.
        try run(schedule(groups: 6, concurrent: { $0 < 5 }, laneBytes: 1000, window: 100_000), memory: memory, log: log,
                wait: { g in if g == 0 { Self.waitUntil { (1...4).allSatisfy(log.finished) } } })
        let events = log.all
        XCTAssertEqual(events.compactMap { if case .written(let g) = $0 { g } else { nil } }, Array(0..<6))
        XCTAssertLessThan(events.firstIndex(of: .finished(4))!, events.firstIndex(of: .finished(0))!)
        // Every output's elements in order, each group's writes between the previous group's `written` and its own.
        var expectedGroup = 0
        var next = [Int](repeating: 0, count: 6)
        var written: [[Float]] = Array(repeating: [], count: 6)
        for event in events {
            switch event {
            case .write(let o, let offset, let values):
                XCTAssertEqual(o, expectedGroup, "outputs written in schedule order")
                XCTAssertEqual(offset, next[o])
                next[o] += values.count
                written[o] += values
            case .written(let g):
                XCTAssertEqual(g, expectedGroup)
                expectedGroup += 1
            default: break
            }
        }
        for g in 0..<6 { XCTAssertEqual(written[g], (0..<32).map { Float(100 * g + $0) }, "group \(g)") }
        // Groups 1–4 buffered their outputs (128 bytes each) while group 0 ran, and gave them back.
        XCTAssertGreaterThanOrEqual(memory.peakBytes, 4 * 128)
        XCTAssertEqual(memory.liveBytes, 0)
        XCTAssertEqual(log.threads.withLock { $0 }, [0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 2])
        // The group running alone started only after every group before it was written.
        XCTAssertLessThan(events.firstIndex(of: .written(4))!, events.firstIndex(of: .started(5))!)
    }

    func testTheWindowBoundsTheGroupsInFlight() throws {
        let log = Log()
        // Room for two running groups: while group 0 runs, group 1 runs and finishes (keeping its 128 bytes), and
        // group 2 (1000 more) must wait for group 0 to be written.
        try run(schedule(groups: 4, concurrent: { _ in true }, laneBytes: 1000, window: 2000), memory: MemoryAccount(),
                log: log, wait: { g in
                    if g == 0 {
                        Self.waitUntil { log.finished(1) }
                        usleep(50_000)
                    }
                })
        let events = log.all
        XCTAssertLessThan(events.firstIndex(of: .finished(1))!, events.firstIndex(of: .finished(0))!)
        XCTAssertLessThan(events.firstIndex(of: .written(0))!, events.firstIndex(of: .started(2))!)
        XCTAssertEqual(events.compactMap { if case .written(let g) = $0 { g } else { nil } }, Array(0..<4))
    }

    /// With the window the scheduler gives (`Scheduler.assignLanes`: every lane running the largest group, plus what
    /// a finished group keeps until written), a lane that finished a group while the head still runs starts the next
    /// group of the same size instead of waiting for the head (a layer's third MLP projection beside its first).
    func testALaneThatFinishedAheadStartsTheNextGroupOfTheLargestSize() throws {
        let log = Log()
        // Group 0 finishes only once group 2 has: group 2 (1000 bytes) started while group 0 ran and group 1 kept its
        // 128 bytes of outputs. (With a window of 2000 it would wait for group 0, and the wait times out.)
        try run(schedule(groups: 4, concurrent: { _ in true }, laneBytes: 1000, window: 2 * 1000 + 128),
                memory: MemoryAccount(), log: log, wait: { g in if g == 0 { Self.waitUntil { log.finished(2) } } })
        let events = log.all
        XCTAssertLessThan(events.firstIndex(of: .started(2))!, events.firstIndex(of: .finished(0))!)
        XCTAssertLessThan(events.firstIndex(of: .finished(2))!, events.firstIndex(of: .finished(0))!)
        XCTAssertEqual(events.compactMap { if case .written(let g) = $0 { g } else { nil } }, Array(0..<4))
    }

    func testTheEarliestFailedGroupsErrorIsThrownAndNothingAfterItIsWritten() {
        let log = Log()
        let memory = MemoryAccount()
        XCTAssertThrowsError(try run(schedule(groups: 6, concurrent: { _ in true }, laneBytes: 1000, window: 100_000),
                                     memory: memory, log: log,
                                     wait: { g in
                                         // Group 3 fails first; group 2, started before it, fails later.
                                         if g == 2 { Self.waitUntil { log.all.contains(.started(3)) }; usleep(20_000) }
                                     },
                                     fail: { $0 == 2 || $0 == 3 })) { error in
            XCTAssertEqual((error as? ExecutionError)?.description.contains("group 2 failed"), true, "\(error)")
        }
        XCTAssertEqual(log.all.compactMap { if case .written(let g) = $0 { g } else { nil } }, [0, 1])
        XCTAssertFalse(log.all.contains(.started(5)), "no group starts after a failure is known")
        XCTAssertEqual(memory.liveBytes, 0)
    }
}
