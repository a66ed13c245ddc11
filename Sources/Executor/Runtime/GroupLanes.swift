import Checkpoint
import Dispatch
import Foundation
import IR

/// Runs a schedule's groups on its lanes (`Schedule.lanes`, one thread each) and writes their outputs in schedule
/// order, so that the shards get the bytes, the tensor order and the file order a run of one group at a time gives.
///
/// Groups start in schedule order. A concurrent group (`ChunkGroup.concurrent`) starts on a free lane, its kernels'
/// loops on that one thread, while the groups in flight (running, or finished with outputs not yet written) reserve
/// at most `Schedule.laneWindowBytes` with it: a running group its `laneBytes`, a finished one its buffered outputs
/// and its writers (`writerBytes`). Any other group starts once every group before it is written and runs alone,
/// its kernels' loops on all `Schedule.threads` threads. The oldest group in flight (the head) writes its chunks as
/// they come; a group behind it encodes them into buffers holding its tensors' stored bytes (counted by the memory
/// account), written whole once it becomes the head. Each group's `written` callback (the shards it closes) runs
/// in schedule order.
///
/// A failed group stops new starts; the groups in flight finish; the error of the earliest failed group is thrown.
/// Every group before it had started, so it is the error a run of one group at a time would have stopped at.
final class GroupLanes: @unchecked Sendable {
    /// A chunk of an output: f32 values of a float tensor (the writer rounds them to its dtype), or stored bytes
    /// (an integer or BOOL tensor's elements, or a float tensor's already encoded).
    enum Chunk {
        case floats(UnsafeBufferPointer<Float>)
        case bytes(UnsafeRawBufferPointer)
    }

    /// Passes elements `range` of output `output` (an index into `Graph.outputs`), as f32 values (float tensors) or
    /// as the bytes of stored elements (integer and BOOL tensors), to be written in schedule order.
    typealias Emit = (_ output: Int, _ range: Range<Int>, _ values: UnsafePointer<Float>) throws(ExecutionError) -> Void

    /// What the lanes call back. All but `run` are called with the lanes' lock held, so never two at once.
    struct Callbacks {
        /// Opens the writers of the shards group `group` (an index into `Schedule.groups`) opens, before it starts.
        var open: (_ group: Int) throws(ExecutionError) -> Void
        /// Computes group `group` with `parallel`, passing every output chunk to `emit`; runs on its lane's thread
        /// without the lock.
        var run: (_ group: Int, _ parallel: Parallel, _ emit: Emit) throws(ExecutionError) -> Void
        /// Writes `chunk` as elements `elementOffset…` of output `output`.
        var write: (_ output: Int, _ elementOffset: Int, _ chunk: Chunk) throws(ExecutionError) -> Void
        /// Called once all of group `group`'s outputs are written, group after group in schedule order.
        var written: (_ group: Int) throws(ExecutionError) -> Void
    }

    /// One output's chunks encoded while its group was behind the head: the tensor's stored bytes, `elements` of
    /// them filled from the front.
    private struct Buffered {
        let output: Int
        let buffer: AccountedBuffer<UInt8>
        var elements: Int
    }

    private let schedule: Schedule
    /// The groups to run (indices into `schedule.groups`), in schedule order; positions below index this.
    private let order: [Int]
    private let memory: MemoryAccount
    private let outputTypes: [Int: TensorType]
    private let callbacks: Callbacks
    private let lanes: Int

    /// Guards everything below, and the callbacks but `run`.
    private let condition = NSCondition()
    /// The position of the next group to start.
    private var next = 0
    /// The position of the oldest group not yet written (the head).
    private var head = 0
    /// Positions of groups computed without error and not yet written.
    private var computed = Set<Int>()
    /// Chunks of groups behind the head, per position, in the order they came.
    private var buffered: [Int: [Buffered]] = [:]
    /// Bytes the groups in flight reserve from the window.
    private var reserved = 0
    /// A group running alone (no other group runs beside it).
    private var aloneRunning = false
    /// Errors by position.
    private var failures: [Int: ExecutionError] = [:]

    /// Lanes over `order` (indices into `schedule.groups`, in schedule order) of `schedule`, whose outputs have
    /// `outputTypes` (by index into `Graph.outputs`); buffers are counted by `memory`.
    init(schedule: Schedule, order: [Int], memory: MemoryAccount, outputTypes: [Int: TensorType],
         callbacks: Callbacks) {
        self.schedule = schedule
        self.order = order
        self.memory = memory
        self.outputTypes = outputTypes
        self.callbacks = callbacks
        lanes = max(1, schedule.lanes)
    }

    /// Runs every group and writes its outputs: on the calling thread and `lanes − 1` more.
    /// - Throws: the error of the earliest group (in schedule order) that failed, or whose writing failed.
    func run() throws(ExecutionError) {
        let done = DispatchGroup()
        for lane in 1..<lanes {
            done.enter()
            let thread = Thread { [self] in
                self.work()
                done.leave()
            }
            thread.name = "mergegraph lane \(lane + 1)"
            thread.start()
        }
        work()
        done.wait()
        if let first = failures.keys.min(), let error = failures[first] { throw error }
        guard head == order.count else {
            throw .planMismatch("the lanes wrote \(head) of \(order.count) groups")
        }
    }

    /// One lane: takes the next group whenever it may start, until none is left or a group failed.
    private func work() {
        let one = Parallel(threads: 1)
        let all = Parallel(threads: schedule.threads)
        condition.lock()
        while failures.isEmpty, next < order.count {
            let position = next
            let group = schedule.groups[order[position]]
            let concurrent = lanes > 1 && group.concurrent
            let idle = head == next
            guard concurrent ? !aloneRunning && (idle || reserved + group.laneBytes <= schedule.laneWindowBytes)
                             : idle else {
                condition.wait()
                continue
            }
            next += 1
            if concurrent { reserved += group.laneBytes } else { aloneRunning = true }
            var failure: ExecutionError?
            do { try callbacks.open(order[position]) } catch { failure = error }
            condition.unlock()
            if failure == nil {
                do {
                    try callbacks.run(order[position], concurrent ? one : all) {
                        output, range, values throws(ExecutionError) in
                        try self.emit(position: position, output: output, range: range, values: values)
                    }
                } catch {
                    failure = error
                }
            }
            condition.lock()
            if concurrent { reserved -= group.laneBytes } else { aloneRunning = false }
            if let failure {
                failures[position] = failure
                buffered[position] = nil
            } else {
                computed.insert(position)
                reserved += heldBytes(position)
            }
            advance()
            condition.broadcast()
        }
        condition.broadcast()
        condition.unlock()
    }

    /// What a finished group at `position` keeps until it is written: its buffered chunks and its writers.
    private func heldBytes(_ position: Int) -> Int {
        (buffered[position] ?? []).reduce(0) { $0 + $1.buffer.count } + schedule.groups[order[position]].writerBytes
    }

    /// Writes every computed group at the head, in order, and calls its `written`. Lock held.
    private func advance() {
        while head < next, computed.contains(head), failures.isEmpty {
            let position = head
            do {
                try flush(position)
                try callbacks.written(order[position])
            } catch {
                failures[position] = error
                return
            }
            reserved -= schedule.groups[order[position]].writerBytes
            computed.remove(position)
            head += 1
        }
    }

    /// Writes the chunks buffered for the group at `position` (the head), tensor by tensor, and frees them. Lock held.
    private func flush(_ position: Int) throws(ExecutionError) {
        guard let pieces = buffered.removeValue(forKey: position) else { return }
        if computed.contains(position) {
            reserved -= pieces.reduce(0) { $0 + $1.buffer.count }
        }
        for piece in pieces {
            let size = outputTypes[piece.output]!.dtype.byteSize
            try callbacks.write(piece.output, 0, .bytes(UnsafeRawBufferPointer(start: piece.buffer.pointer,
                                                                               count: piece.elements * size)))
        }
    }

    /// A chunk of output `output` from the group at `position`: written now if that group is the head (after what
    /// it buffered before), else encoded into its buffer.
    private func emit(position: Int, output: Int, range: Range<Int>,
                      values: UnsafePointer<Float>) throws(ExecutionError) {
        condition.lock()
        defer { condition.unlock() }
        guard let type = outputTypes[output] else { throw .planMismatch("output \(output) has no type") }
        if position == head {
            try flush(position)
            let chunk: Chunk = type.dtype.isFloatingPoint
                ? .floats(UnsafeBufferPointer(start: values, count: range.count))
                : .bytes(UnsafeRawBufferPointer(start: values, count: range.count * type.dtype.byteSize))
            try callbacks.write(output, range.lowerBound, chunk)
            return
        }
        try encode(values, range: range, output: output, type: type, into: &buffered[position, default: []])
    }

    /// Encodes elements `range` of output `output` (of `type`) into its buffer in `pieces` (a group's list, edited in
    /// place: its outputs' chunks interleave), made on its first chunk. Lock held.
    private func encode(_ values: UnsafePointer<Float>, range: Range<Int>, output: Int, type: TensorType,
                        into pieces: inout [Buffered]) throws(ExecutionError) {
        let piece: Int
        if let found = pieces.firstIndex(where: { $0.output == output }) {
            piece = found
        } else {
            pieces.append(Buffered(output: output, buffer: memory.allocate(UInt8.self, count: type.byteCount, zeroed: false),
                                   elements: 0))
            piece = pieces.count - 1
        }
        guard range.lowerBound == pieces[piece].elements, range.upperBound <= type.elementCount else {
            throw .planMismatch("output \(output): chunk \(range) after \(pieces[piece].elements) elements")
        }
        let size = type.dtype.byteSize
        let destination = UnsafeMutableRawPointer(pieces[piece].buffer.pointer) + range.lowerBound * size
        if type.dtype.isFloatingPoint {
            DTypeConversion.encode(values, count: range.count, as: type.dtype, into: destination)
        } else {
            destination.copyMemory(from: values, byteCount: range.count * size)
        }
        pieces[piece].elements = range.upperBound
    }
}
