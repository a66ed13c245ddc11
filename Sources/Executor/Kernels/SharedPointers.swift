/// A kernel's operands and output as parallel workers see them, indexed by global element index; each worker
/// touches a disjoint range of `output`.
struct SharedPointers: @unchecked Sendable {
    var inputs: [UnsafePointer<Float>]
    var output: UnsafeMutablePointer<Float>
}

/// One pointer (`UnsafePointer` or `UnsafeMutablePointer` of any element) handed to parallel workers; those that
/// write through it touch disjoint parts.
struct SendablePointer<Pointer>: @unchecked Sendable {
    let pointer: Pointer
    init(_ pointer: Pointer) { self.pointer = pointer }
}
