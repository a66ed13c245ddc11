/// What the streaming kernel of one node holds besides its chunk buffers, phase by phase, and how many
/// statistics passes it makes over its operands before producing output. Declared by each kernel beside its
/// code (`Sources/Executor`) and read by the scheduler through `CostModel`, so the plan's memory prediction and
/// sweep structure come from the kernels themselves.
public struct KernelCost: Hashable, Sendable {
    /// Bytes held from the start of the node's group until its first statistics pass (all, for a node
    /// without passes).
    public var initialBytes: Int
    /// Bytes held during each statistics pass, in order; `count` is the number of passes.
    public var passBytes: [Int]
    /// Bytes held after the last pass, through the output sweep.
    public var sweepBytes: Int
    /// Bytes per chunk element of the staging buffer the node reads stored data through (loads: the stored
    /// dtype's size). One staging buffer serves a whole group, sized for its widest load.
    public var stagingBytesPerElement: Int

    public init(initialBytes: Int = 0, passBytes: [Int] = [], sweepBytes: Int = 0, stagingBytesPerElement: Int = 0) {
        self.initialBytes = initialBytes
        self.passBytes = passBytes
        self.sweepBytes = sweepBytes
        self.stagingBytesPerElement = stagingBytesPerElement
    }

    /// A kernel that holds `bytes` for the whole group and makes no pass.
    public static func constant(_ bytes: Int) -> KernelCost {
        KernelCost(initialBytes: bytes, sweepBytes: bytes)
    }

    /// The statistics passes the kernel makes.
    public var passes: Int { passBytes.count }

    /// Bytes held in a phase: before the passes (`pass` < 0 with passes left to make), during pass `pass`, or
    /// after them (`pass` ≥ `passes`).
    public func bytes(pass: Int) -> Int {
        if passes == 0 { return sweepBytes }
        if pass < 0 { return initialBytes }
        return pass < passes ? passBytes[pass] : sweepBytes
    }
}

/// The port through which the scheduler learns each node's streaming cost. The executor provides the real one
/// (`StreamingCostModel`); tests may inject others.
public protocol CostModel: Sendable {
    /// The cost of computing a node with `op` and result type `result` from operands of `operands` types on
    /// `threads` worker threads.
    func cost(of op: Op, result: TensorType, operands: [TensorType], threads: Int) -> KernelCost
    /// Bytes the output writer holds for each shard open at once (its conversion buffers).
    var bytesPerOpenShard: Int { get }
}
