/// An f32 buffer holding one live IR value (freed when the last reference goes).
public final class TensorBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
    }

    deinit { pointer.deallocate() }

    /// The contents as an array (for tests and small tensors).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
}

/// Raw pointers made shareable with parallel workers; each worker touches a disjoint range.
struct SharedPointers: @unchecked Sendable {
    var inputs: [UnsafePointer<Float>]
    var output: UnsafeMutablePointer<Float>
}
