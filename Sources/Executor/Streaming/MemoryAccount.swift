import Synchronization

/// Counts the bytes the executor holds in chunk buffers, kernel state, input staging and writer buffers, and their peak.
public final class MemoryAccount: Sendable {
    private let live = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)

    public init() {}

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

    /// A buffer of `count` elements (zero-filled unless `zeroed` is false), counted until it is freed.
    public func allocate<Element: BitwiseCopyable>(_ type: Element.Type, count: Int,
                                                   zeroed: Bool = true) -> AccountedBuffer<Element> {
        AccountedBuffer(count: count, zeroed: zeroed, account: self)
    }
}

/// Memory taken from a `MemoryAccount`, given back when the buffer is freed.
public final class AccountedBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Element>
    private let account: MemoryAccount

    init(count: Int, zeroed: Bool, account: MemoryAccount) {
        self.count = count
        self.account = account
        pointer = .allocate(capacity: max(count, 1))
        if zeroed {
            let bytes = UnsafeMutableRawPointer(pointer)
            bytes.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1) * MemoryLayout<Element>.stride)
        }
        account.charge(count * MemoryLayout<Element>.stride)
    }

    deinit {
        pointer.deallocate()
        account.release(count * MemoryLayout<Element>.stride)
    }

    public subscript(i: Int) -> Element {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// The contents as an array (for tests and small state).
    public var array: [Element] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
