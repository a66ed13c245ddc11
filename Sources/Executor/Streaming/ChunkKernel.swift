import IR

/// One chunk of every operand of a kernel: elements `range` of the tensor, operand `k` at `pointers[k]`; or, for a
/// kernel that reads kept bf16 planes itself (`ChunkKernel.readsBF16Planes`), operand `k` in `planes[k]` instead.
public struct ChunkOperands: @unchecked Sendable {
    public var pointers: [UnsafePointer<Float>]
    /// Flat element indices of the tensor this chunk holds.
    public var range: Range<Int>
    /// Per operand, the whole-tensor plane of bf16 patterns (indexed by global element index) the runner left
    /// packed for a kernel that reads planes, or nil; empty when no operand is. Where `planes[k]` is set,
    /// `pointers[k]` holds nothing to read.
    public var planes: [UnsafePointer<UInt16>?]

    public init(pointers: [UnsafePointer<Float>], range: Range<Int>, planes: [UnsafePointer<UInt16>?] = []) {
        self.pointers = pointers
        self.range = range
        self.planes = planes
    }

    /// Operand `k`'s bf16 plane when the runner left it packed (`planes`), else nil.
    @inline(__always)
    public func plane(_ k: Int) -> UnsafePointer<UInt16>? { planes.isEmpty ? nil : planes[k] }

    /// Whether some operand is a packed plane.
    public var hasPlanes: Bool { planes.contains { $0 != nil } }

    public var count: Int { pointers.count }

    /// Operand `k` indexed by global element index (valid for indices in `range`).
    @inline(__always)
    public func global(_ k: Int) -> UnsafePointer<Float> { pointers[k] - range.lowerBound }
}

/// An op in streaming form: zero or more statistics passes over its operands, chunk by chunk, then its output
/// chunk by chunk. Every call happens on one thread at a time; kernels parallelize inside a call.
public protocol ChunkKernel: AnyObject {
    /// Starts another statistics pass if the kernel needs one before it can produce output.
    func beginPass() -> Bool
    /// Adds one chunk of the operands to the current pass; chunks come in increasing order and cover the tensor.
    func observe(_ operands: ChunkOperands) throws(ExecutionError)
    /// The heavy computation at the end of a statistics pass, before `endPass`: it must not touch anything another
    /// kernel touches, since the runner calls it concurrently for the observers of one sweep (so that, say, three
    /// models' exact-tie selections run on two cores at once), and must neither allocate nor free counted memory;
    /// it may take at most `finishBytes` bytes uncounted (`MemoryAccount.allocate(counted: false)`), which the
    /// runner has reserved, and give them back by the end of its continuation. It may return the rest of its work as
    /// a `PassContinuation`, which the runner runs once any thread is free (on one thread, right after the call;
    /// on more, once no other observer's `finishPass` is left to start): so that three kernels' work splits evenly
    /// over two threads instead of taking two rounds (unless some observer takes finishing bytes: then no more
    /// kernels finish at once than the group has threads).
    func finishPass() -> PassContinuation?
    /// Bytes `finishPass` may take until its continuation ends, as the kernel's cost declares for the pass
    /// (`KernelCost.finishBytes`); the runner reserves them in the memory account, for as many kernels of a sweep
    /// at once as it has threads (`KernelCost.finishingBytes`), so that the measured peak is the plan's however
    /// the kernels' finishing overlaps.
    var finishBytes: Int { get }
    /// Finishes the current pass.
    func endPass() throws(ExecutionError)
    /// Starts a sweep of `produce` calls (chunks in increasing order from the first).
    func beginSweep()
    /// Writes output elements `operands.range`, rounded to the node's dtype, to `out` (`out[0]` is the first).
    func produce(_ operands: ChunkOperands, into out: UnsafeMutablePointer<Float>) throws(ExecutionError)
    /// Whether `observe` and `produce` read operands kept whole as bf16 planes from `ChunkOperands.planes`
    /// themselves, so that the runner need not unpack them into chunk buffers (default false). The runner asks at the
    /// start of each sweep, after `beginPass`, so the answer may change from pass to pass.
    var readsBF16Planes: Bool { get }
}

extension ChunkKernel {
    public func beginPass() -> Bool { false }
    public func observe(_ operands: ChunkOperands) throws(ExecutionError) {}
    public func finishPass() -> PassContinuation? { nil }
    public var finishBytes: Int { 0 }
    public func endPass() throws(ExecutionError) {}
    public func beginSweep() {}
    public var readsBF16Planes: Bool { false }
}

/// The second part of a kernel's `finishPass` work, run on whichever thread is free (the same rules apply).
public struct PassContinuation: @unchecked Sendable {
    /// The work.
    public let run: () -> Void

    public init(_ run: @escaping () -> Void) { self.run = run }
}

/// What a kernel knows about the node it computes.
public struct KernelContext: Sendable {
    /// The node's tensor shape (every operand has the same element count).
    public var shape: [Int]
    /// The node's dtype: outputs are rounded to it.
    public var dtype: DType
    public var parallel: Parallel
    /// Where kernels take their state memory from, so that it is counted.
    public var memory: MemoryAccount
    /// The operands' dtypes: every operand value is representable in its dtype (f32 when not known).
    public var operandDTypes: [DType]
    /// Whether the plan lets the kernel hold its operands itself (`KernelCost.holding`, `ChunkGroup.holding`):
    /// after its operand passes it gets none.
    public var holdsOperands = false

    public init(shape: [Int], dtype: DType, parallel: Parallel, memory: MemoryAccount, operandDTypes: [DType] = []) {
        self.shape = shape
        self.dtype = dtype
        self.parallel = parallel
        self.memory = memory
        self.operandDTypes = operandDTypes
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// Length of the last dimension (the whole tensor for 0-D and 1-D tensors).
    public var rowLength: Int { shape.count < 2 ? elementCount : shape[shape.count - 1] }
}
