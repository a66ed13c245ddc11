import Synchronization

/// Counts the bytes the executor holds in chunk buffers, kernel state, input staging and writer buffers, and their peak.
///
/// Freed buffers of at least `BlockPool.minimumBytes` are kept in a `BlockPool` for reuse while the bytes held plus
/// the bytes pooled stay within the larger of the peak so far and `retainLimit` (during a run, a quarter more than the
/// plan's predicted peak, never past the budget: `retainLimit(predictedPeak:budget:)`), so that recycling never makes
/// the process hold more than that.
public final class MemoryAccount: Sendable {
    private let live = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    private let retain = Atomic<Int>(0)
    let pool = BlockPool()

    public init() {}

    /// Bytes that held plus pooled buffers may reach even before the peak does (default 0: only the peak so far).
    public var retainLimit: Int {
        get { retain.load(ordering: .relaxed) }
        set { retain.store(newValue, ordering: .relaxed) }
    }

    /// The `retainLimit` of a run whose plan predicts a peak of `predictedPeak` bytes within a budget of `budget`
    /// bytes: `predictedPeak` plus a quarter, at most `budget` (and at least `predictedPeak`). With the predicted peak
    /// alone, the blocks of one tensor's shapes that did not fit beside the next tensor's were given back and the
    /// next layer faulted them in again: `slerp_of_ties` at `--max-memory 512MiB` (297 MiB predicted) faulted in 560–600
    /// MiB of huge pages and 85–90 thousand small pages a run, `ties3` and `breadcrumbs3` 56 thousand small pages;
    /// with the quarter, 262–304 MiB and 14 thousand, and 13 thousand, for 2–17 MiB more resident memory.
    public static func retainLimit(predictedPeak: Int, budget: Int) -> Int {
        max(predictedPeak, min(budget, predictedPeak + predictedPeak / 4))
    }

    /// The bound on held plus pooled bytes now.
    var poolBound: Int { max(peakBytes, retainLimit) }

    /// The largest number of bytes held at once so far.
    public var peakBytes: Int { peak.load(ordering: .relaxed) }

    /// Bytes held now.
    public var liveBytes: Int { live.load(ordering: .relaxed) }

    /// Records `bytes` more held.
    public func charge(_ bytes: Int) {
        let now = live.add(bytes, ordering: .relaxed).newValue
        _ = peak.max(now, ordering: .relaxed)
    }

    /// Records `bytes` given back.
    public func release(_ bytes: Int) {
        live.subtract(bytes, ordering: .relaxed)
    }

    /// A buffer of `count` elements (zero-filled unless `zeroed` is false), counted until it is freed; with
    /// `counted` false, not counted (its bytes are already: a reservation of the caller's, `charge`/`release`),
    /// though still taken from and given back to the pool.
    public func allocate<Element: BitwiseCopyable>(_ type: Element.Type, count: Int, zeroed: Bool = true,
                                                   counted: Bool = true) -> AccountedBuffer<Element> {
        AccountedBuffer(count: count, zeroed: zeroed, counted: counted, account: self)
    }
}

/// Memory taken from a `MemoryAccount`, given back when the buffer is freed.
public final class AccountedBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Element>
    private let account: MemoryAccount
    /// The size of the block holding the elements (bytes), at least their bytes (`BlockPool.take`).
    private let blockBytes: Int
    /// Whether the buffer's bytes are counted in the account (else a reservation counts them).
    private let counted: Bool

    init(count: Int, zeroed: Bool, counted: Bool = true, account: MemoryAccount) {
        self.count = count
        self.account = account
        self.counted = counted
        let bytes = max(count, 1) * MemoryLayout<Element>.stride
        if counted { account.charge(count * MemoryLayout<Element>.stride) }
        let (raw, blockBytes) = account.pool.take(bytes: bytes, live: account.liveBytes, peak: account.poolBound)
        self.blockBytes = blockBytes
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        if zeroed { raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
    }

    deinit {
        let bytes = count * MemoryLayout<Element>.stride
        if counted { account.release(bytes) }
        // An uncounted buffer's bytes are still in the caller's reservation: held bytes without them, so that the
        // pool keeps the block as it would a counted one (the next prune's replay takes it).
        account.pool.give(UnsafeMutableRawPointer(pointer), bytes: max(count, 1) * MemoryLayout<Element>.stride,
                          blockBytes: blockBytes, live: account.liveBytes - (counted ? 0 : bytes),
                          peak: account.poolBound)
    }

    public subscript(i: Int) -> Element {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// The contents as an array (for tests and small state).
    public var array: [Element] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
