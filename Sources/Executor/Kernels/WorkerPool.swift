import CPUHints
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The threads that run `Parallel`'s loops: persistent workers that, between two jobs, wait for the next one by
/// spinning for a short while (`spinLimit` checks, some microseconds) before they sleep on a semaphore.
///
/// A merge calls a parallel loop per kernel per chunk, tens of thousands of times per model, back to back. With
/// `DispatchQueue.concurrentPerform` every call woke a sleeping worker through the kernel's futex: on a 1b TIES
/// merge that was a fifth of all CPU time (`try_to_wake_up`, `finish_task_switch`) and the wake-up latency added to
/// the wall time of every call. Here a worker that finished a job is usually still spinning when the next one is
/// published, and joins it without a system call.
///
/// `perform(iterations:_:)` has `concurrentPerform`'s contract: `body(i)` runs once for every `i` of
/// `0..<iterations`, on the calling thread and the workers, and returns when all have returned. A call made while
/// another is running (from a worker, or from a second thread) runs its iterations on the calling thread, in order,
/// so nested loops never wait for each other.
final class WorkerPool: @unchecked Sendable {
    /// The pool every `Parallel` uses.
    static let shared = WorkerPool()

    /// Checks of the job counter a waiting thread makes before it sleeps (the main thread: before it yields), each
    /// after a spin-wait hint (`mg_cpu_relax`, x86 `pause`, ~27 ns here): about 7 µs on this machine. Polling
    /// without the hint (20,000 bare checks, ~6 µs) cost more time on both threads: alternated on the 2-core EPYC
    /// VM, `dare_ties3` ran in 4.99, 5.35, 5.80, 5.13, 4.91 s (CPU 9.2–10.8 s) against 6.20, 5.74, 5.82, 5.22,
    /// 5.20 s (CPU 10.0–11.8 s) and `ties3` in 7.9–8.6 s (CPU median 15.2) against 7.7–10.3 s (16.8); 2,500 hinted
    /// checks (~70 µs) gained nothing over 250, and 2,000,000 bare ones (the worker never sleeping) were slower.
    static let spinLimit = 250

    /// One published job: the body and the iterations not yet taken or not yet finished.
    private final class Job: @unchecked Sendable {
        let body: (Int) -> Void
        let iterations: Int
        let next = Atomic<Int>(0)
        let finished = Atomic<Int>(0)

        init(body: @escaping (Int) -> Void, iterations: Int) {
            self.body = body
            self.iterations = iterations
        }

        /// Runs iterations until none is left to take.
        func work() {
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= iterations { return }
                body(i)
                finished.add(1, ordering: .releasing)
            }
        }
    }

    /// One worker thread's parking place.
    private final class Worker: @unchecked Sendable {
        let wake = DispatchSemaphore(value: 0)
        let sleeping = Atomic<Bool>(false)
    }

    /// Incremented when a job is published; workers join the job whose number they have not seen.
    private let generation = Atomic<Int>(0)
    /// Set while a job runs (later calls run on their own thread).
    private let busy = Atomic<Bool>(false)
    /// Workers between taking the current job and letting go of it: `perform` returns only once this is zero, so
    /// that no worker holds the caller's non-escaping body after it returns.
    private let joined = Atomic<Int>(0)
    /// The current job (read by workers after they see `generation` change).
    private let current = Mutex<Job?>(nil)
    /// The workers started so far and a lock for starting more.
    private let workers = Mutex<[Worker]>([])

    private init() {}

    /// Runs `body(i)` for every `i` in `0..<iterations` on the calling thread and up to `iterations − 1` workers,
    /// and returns once every call has returned.
    func perform(iterations: Int, _ body: (Int) -> Void) {
        guard iterations > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<iterations { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { body in
            let job = Job(body: body, iterations: iterations)
            let started = ensureWorkers(iterations - 1)
            current.withLock { $0 = job }
            generation.add(1, ordering: .sequentiallyConsistent)
            for worker in started where worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                worker.wake.signal()
            }
            job.work()
            var spins = 0
            while job.finished.load(ordering: .acquiring) < iterations {
                spins += 1
                mg_cpu_relax()
                if spins > Self.spinLimit { sched_yield() }
            }
            current.withLock { $0 = nil }
            while joined.load(ordering: .sequentiallyConsistent) > 0 { sched_yield() }
        }
    }

    /// The first `count` workers, started if needed.
    private func ensureWorkers(_ count: Int) -> [Worker] {
        workers.withLock { workers in
            while workers.count < count {
                let worker = Worker()
                workers.append(worker)
                let thread = PoolThread { [unowned self] in self.serve(worker) }
                thread.start()
            }
            return Array(workers.prefix(count))
        }
    }

    /// A worker's loop: join each new job, else spin, then sleep until woken.
    private func serve(_ worker: Worker) {
        var seen = generation.load(ordering: .acquiring)
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < Self.spinLimit {
                mg_cpu_relax()
                spins += 1
            }
            if generation.load(ordering: .acquiring) == seen {
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) != seen {
                    // Published while going to sleep: take back the flag, or consume the wake-up already sent.
                    if !worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) { worker.wake.wait() }
                } else {
                    worker.wake.wait()
                }
                continue
            }
            seen = generation.load(ordering: .acquiring)
            joined.add(1, ordering: .sequentiallyConsistent)
            joinCurrent()
            joined.subtract(1, ordering: .releasing)
        }
    }

    /// Works on the current job, if any, and lets go of it before returning.
    @inline(never)
    private func joinCurrent() {
        current.withLock { $0 }?.work()
    }
}

/// A detached POSIX thread running a closure (the pool's workers live as long as the process).
private final class PoolThread: @unchecked Sendable {
    private let body: () -> Void

    init(_ body: @escaping () -> Void) { self.body = body }

    func start() {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var id = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&id, &attributes, { context in
            let thread = Unmanaged<PoolThread>.fromOpaque(context!).takeRetainedValue()
            thread.body()
            return nil
        }, context)
        pthread_attr_destroy(&attributes)
    }
}
