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
    /// The passes that read the operands; nil when every pass and the output sweep read them. A kernel that holds
    /// what it needs of its operands itself reads them only in its first `operandPasses` passes, so the sweeps
    /// after those compute nothing for it.
    public var operandPasses: Int?
    /// The cost of the kernel holding its operands itself, when it offers to (`holdingOperands`).
    public var holding: OperandHolding?
    /// Bytes held beyond `passBytes` only while each pass finishes (the executor's `finishPass` takes them and
    /// gives them back by the end of its continuation), in pass order; missing entries are 0. The kernels of a sweep finish
    /// on the group's threads, so at most `threads` of them hold these bytes at once (`finishingBytes`): a TIES
    /// merge holding its task vectors gathers each prune's sort entries only when the prune replays the sort.
    public var finishBytes: [Int]

    public init(initialBytes: Int = 0, passBytes: [Int] = [], sweepBytes: Int = 0, stagingBytesPerElement: Int = 0,
                holding: OperandHolding? = nil, finishBytes: [Int] = []) {
        self.initialBytes = initialBytes
        self.passBytes = passBytes
        self.sweepBytes = sweepBytes
        self.stagingBytesPerElement = stagingBytesPerElement
        self.holding = holding
        self.finishBytes = finishBytes
    }

    /// The cost with the kernel holding its operands (what the scheduler grants when the budget allows), or nil
    /// when the kernel does not offer to.
    public func holdingOperands() -> KernelCost? {
        guard let holding else { return nil }
        var cost = KernelCost(initialBytes: initialBytes, passBytes: holding.passBytes, sweepBytes: holding.sweepBytes,
                              stagingBytesPerElement: stagingBytesPerElement, finishBytes: holding.finishBytes)
        cost.operandPasses = holding.operandPasses
        return cost
    }

    /// Whether pass `pass` (the output sweep: `passes`) reads the operands.
    public func readsOperands(pass: Int) -> Bool { operandPasses.map { pass < $0 } ?? true }

    /// A kernel that holds `bytes` for the whole group and makes no pass.
    public static func constant(_ bytes: Int) -> KernelCost {
        KernelCost(initialBytes: bytes, sweepBytes: bytes)
    }

    /// The statistics passes the kernel makes.
    public var passes: Int { passBytes.count }

    /// Bytes held beyond `passBytes[pass]` while pass `pass` finishes (0 for a pass without, or past the passes).
    public func finishBytes(pass: Int) -> Int {
        pass >= 0 && pass < finishBytes.count ? finishBytes[pass] : 0
    }

    /// The most bytes the kernels of one sweep hold while they finish their passes on `threads` threads, each
    /// finishing on one thread at a time: the sum of the `threads` largest of `bytes` (each kernel's
    /// `finishBytes(pass:)` for the pass it makes in the sweep).
    public static func finishingBytes(_ bytes: [Int], threads: Int) -> Int {
        bytes.sorted(by: >).prefix(max(1, threads)).reduce(0, +)
    }

    /// Bytes held in a phase: before the passes (`pass` < 0 with passes left to make), during pass `pass`, or
    /// after them (`pass` ≥ `passes`).
    public func bytes(pass: Int) -> Int {
        if passes == 0 { return sweepBytes }
        if pass < 0 { return initialBytes }
        return pass < passes ? passBytes[pass] : sweepBytes
    }
}

/// What a kernel holds when it keeps, from its first `operandPasses` passes, a whole-tensor copy of what the
/// later passes and the output sweep need (say multislerp's unit vectors in the merge dtype, 2 bytes an element
/// each), so that those read no operands: its operands are computed (loaded, decoded, subtracted) in the first
/// passes only. The scheduler grants it when the group fits the budget with these bytes (`ChunkGroup.holding`).
public struct OperandHolding: Hashable, Sendable {
    /// The passes that read the operands (at least 1, at most the kernel's passes).
    public var operandPasses: Int
    /// Bytes held during each pass, in order (as `KernelCost.passBytes`, the held copy included).
    public var passBytes: [Int]
    /// Bytes held after the last pass, through the output sweep.
    public var sweepBytes: Int
    /// Bytes held beyond `passBytes` only while each pass finishes (as `KernelCost.finishBytes`).
    public var finishBytes: [Int]

    public init(operandPasses: Int, passBytes: [Int], sweepBytes: Int, finishBytes: [Int] = []) {
        self.operandPasses = operandPasses
        self.passBytes = passBytes
        self.sweepBytes = sweepBytes
        self.finishBytes = finishBytes
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
