import Dispatch
import Synchronization
import XCTest

@testable import Executor

/// `WorkerPool` keeps `concurrentPerform`'s contract: every iteration runs exactly once, on more than one thread
/// when there is work for them, nested and concurrent calls finish, and back-to-back jobs (the executor's pattern)
/// never lose or repeat an iteration.
final class WorkerPoolTests: XCTestCase {
    func testEveryIterationRunsExactlyOnceAcrossManyBackToBackJobs() {
        let pool = WorkerPool.shared
        for iterations in [2, 3, 7, 64] {
            for _ in 0..<2_000 {
                let counts = Mutex([Int](repeating: 0, count: iterations))
                pool.perform(iterations: iterations) { i in counts.withLock { $0[i] += 1 } }
                XCTAssertEqual(counts.withLock { $0 }, Array(repeating: 1, count: iterations))
            }
        }
    }

    func testIterationsRunOnMoreThanOneThread() {
        let threads = Mutex(Set<UInt>())
        WorkerPool.shared.perform(iterations: 2) { _ in
            threads.withLock { _ = $0.insert(UInt(bitPattern: Int(bitPattern: pthread_self()))) }
            // Both iterations wait for each other, so a pool that ran them one after the other would hang here.
            let deadline = DispatchTime.now().uptimeNanoseconds + 5_000_000_000
            while threads.withLock({ $0.count }) < 2 && DispatchTime.now().uptimeNanoseconds < deadline {}
        }
        XCTAssertEqual(threads.withLock { $0.count }, 2)
    }

    func testNestedAndConcurrentCallsFinish() {
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<200 {
                WorkerPool.shared.perform(iterations: 3) { _ in
                    WorkerPool.shared.perform(iterations: 5) { _ in total.add(1, ordering: .relaxed) }
                }
            }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 4 * 200 * 3 * 5)
    }

    func testASleepingPoolWakesForTheNextJob() {
        // Longer than the workers spin, so that they have gone to sleep on their semaphores.
        usleep(50_000)
        let counts = Mutex([Int](repeating: 0, count: 8))
        WorkerPool.shared.perform(iterations: 8) { i in counts.withLock { $0[i] += 1 } }
        XCTAssertEqual(counts.withLock { $0 }, Array(repeating: 1, count: 8))
    }

    /// `Parallel.forEachTask` with continuations: every task and every continuation runs once, a continuation after
    /// its task, for any thread count and whether or not tasks return one.
    /// Bounded, at most `threads` tasks are open at once (from the task's call to its continuation's end).
    func testTasksAndTheirContinuationsRunOnce() {
        for threads in [1, 2, 3] {
            for count in [1, 2, 3, 5] {
                for trial in 0..<600 {
                    let log = Mutex<[String]>([])
                    let bounded = trial % 2 == 1
                    let open = Mutex((now: 0, most: 0))
                    Parallel(threads: threads).forEachTask(count: count, bounded: bounded) { i -> PassContinuation? in
                        open.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                        log.withLock { $0.append("task \(i)") }
                        guard i % 2 == 0 else {
                            open.withLock { $0.now -= 1 }
                            return nil
                        }
                        return PassContinuation {
                            log.withLock { $0.append("rest \(i)") }
                            open.withLock { $0.now -= 1 }
                        }
                    }
                    if bounded || threads == 1 {
                        XCTAssertLessThanOrEqual(open.withLock { $0.most }, threads, "\(count) tasks")
                    }
                    let entries = log.withLock { $0 }
                    let expected = (0..<count).map { "task \($0)" } + stride(from: 0, to: count, by: 2).map { "rest \($0)" }
                    XCTAssertEqual(entries.sorted(), expected.sorted())
                    for i in stride(from: 0, to: count, by: 2) {
                        XCTAssertLessThan(entries.firstIndex(of: "task \(i)")!, entries.firstIndex(of: "rest \(i)")!)
                    }
                }
            }
        }
    }
}
