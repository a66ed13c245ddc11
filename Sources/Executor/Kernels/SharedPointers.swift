import CSignConsensus

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

/// The arguments the C kernels (`CSignConsensus`) take: their f32 weights and, per weight, an operand moved to the
/// first element they compute.
enum CKernelArguments {
    /// Whether the processor runs the C kernels (AVX-512F, or AVX2 in eight lanes; asked once).
    static let available = mg_sign_consensus_available() == 1

    /// Calls `body` with `weights` and the C array of `operand(k) + start` for each weight `k` (operands indexed by
    /// global element index, so the C kernel's element 0 is element `start`); returns what `body` returns.
    static func with<T>(weights: [Float], start: Int, operand: (Int) -> UnsafePointer<Float>,
                        _ body: (UnsafePointer<Float>?, UnsafePointer<UnsafePointer<Float>?>?) -> T) -> T {
        weights.withUnsafeBufferPointer { w in
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: max(1, weights.count)) { x in
                for k in weights.indices { x[k] = operand(k) + start }
                return body(w.baseAddress, UnsafePointer(x.baseAddress))
            }
        }
    }
}
