@testable import Executor
import XCTest

/// `BlockPool` through `MemoryAccount`: large freed buffers are reused by size, and held plus pooled bytes never
/// exceed the bound (the peak so far or the retain limit).
final class BlockPoolTests: XCTestCase {
    func testReusesFreedBlocksOfTheSameSize() {
        let memory = MemoryAccount()
        let mib = 1 << 20
        var first: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 4 * mib, zeroed: false)
        let address = first?.pointer
        first = nil
        XCTAssertEqual(memory.pool.pooledBytes, 4 * mib)
        let second = memory.allocate(UInt8.self, count: 4 * mib)
        XCTAssertEqual(second.pointer, address, "the pooled block is reused")
        XCTAssertTrue(second.array.allSatisfy { $0 == 0 }, "a reused block is zeroed when asked")
        XCTAssertEqual(memory.pool.pooledBytes, 0)
        XCTAssertEqual(memory.liveBytes, 4 * mib)
    }

    /// Buffers from 128 KiB up (a small tensor's kernel state, a chunk buffer of a few rows) are the pool's too:
    /// freed, they are pooled and reused like the large ones, not left to glibc's heaps.
    func testBuffersOfAFewHundredKiBArePooled() {
        let memory = MemoryAccount()
        let bytes = 256 << 10
        var first: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: bytes, zeroed: false)
        let address = first?.pointer
        first = nil
        XCTAssertEqual(memory.pool.pooledBytes, bytes)
        let second = memory.allocate(UInt8.self, count: bytes, zeroed: false)
        XCTAssertEqual(second.pointer, address, "the pooled block is reused")
        XCTAssertEqual(memory.pool.pooledBytes, 0)
    }

    /// Blocks the pool gives back leave the process: its resident memory falls back, even for block sizes glibc
    /// would serve from its heaps once its mmap threshold has risen (freed heap memory stays resident).
    func testBlocksGivenBackLeaveTheProcess() throws {
        func residentBytes() throws -> Int {
            let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
            return Int(statm.split(separator: " ")[1])! * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        let mib = 1 << 20
        // Raises glibc's dynamic mmap threshold to 24 MiB, as a run freeing such a block does.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 24 * mib, alignment: 64)
        raw.deallocate()
        let before = try residentBytes()
        // Blocks of sizes 1…12 MiB, interleaved with small long-lived allocations that pin a heap's top; the pool
        // keeps them until its account goes away.
        var pins: [UnsafeMutableRawPointer] = []
        do {
            let memory = MemoryAccount()
            var blocks: [AccountedBuffer<UInt8>] = []
            for size in 1...12 {
                blocks.append(memory.allocate(UInt8.self, count: size * mib + 4096, zeroed: true))
                let pin = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
                pin.storeBytes(of: 1, as: UInt8.self)
                pins.append(pin)
            }
            XCTAssertGreaterThan(try residentBytes() - before, 70 * mib)
            blocks.removeAll()
            XCTAssertGreaterThan(memory.pool.pooledBytes, 70 * mib)
        }
        XCTAssertLessThan(try residentBytes() - before, 16 * mib, "blocks given back are still resident")
        for pin in pins { pin.deallocate() }
    }

    func testHeldPlusPooledStaysWithinTheBound() {
        let memory = MemoryAccount()
        let mib = 1 << 20
        var a: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 8 * mib, zeroed: false)
        a = nil
        XCTAssertEqual(memory.pool.pooledBytes, 8 * mib)
        // A different size, more than twice as large as no pooled block: one huge page of the pooled 8 MiB makes
        // part of it (`assemble`), and the 6 MiB left would make 6 + 3 > the 8 MiB peak, so that block gives its
        // tail back to the system from a huge-page boundary and 4 MiB stay pooled.
        let b = memory.allocate(UInt8.self, count: 3 * mib, zeroed: false)
        XCTAssertEqual(memory.pool.pooledBytes, 4 * mib)
        XCTAssertEqual(memory.liveBytes, 3 * mib)
        XCTAssertLessThanOrEqual(memory.liveBytes + memory.pool.pooledBytes, memory.peakBytes)
        // With a retain limit the pool may hold more than the peak so far, never more than the limit.
        memory.retainLimit = 20 * mib
        var c: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 10 * mib, zeroed: false)
        c = nil
        let d = memory.allocate(UInt8.self, count: 2 * mib, zeroed: false)
        // 2 MiB of the pooled 10 MiB block's pages make `d` (`assemble`); 8 MiB stay pooled.
        XCTAssertEqual(memory.pool.pooledBytes, 8 * mib)
        XCTAssertLessThanOrEqual(memory.liveBytes + memory.pool.pooledBytes, 20 * mib)
        withExtendedLifetime((b, d, a, c)) {}
    }

    func testSmallBuffersBypassThePool() {
        let memory = MemoryAccount()
        var small: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 1000)
        small = nil
        XCTAssertEqual(memory.pool.pooledBytes, 0)
        withExtendedLifetime(small) {}
    }

    /// A request no pooled block of its size serves takes the smallest pooled block of at most twice its size, split
    /// after the whole huge pages it needs when a huge page or more is left (`split`): the rest stays pooled as a block
    /// of its own, and only the part of a huge page the request leaves counts as surplus while the block is in use.
    func testALargerPooledBlockServesASmallerRequest() {
        let memory = MemoryAccount()
        let mib = 1 << 20
        memory.retainLimit = 40 * mib
        var big: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 16 * mib, zeroed: false)
        var huge: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 22 * mib, zeroed: false)
        let address = big?.pointer
        big = nil
        huge = nil
        XCTAssertEqual(memory.pool.pooledBytes, 38 * mib)
        // 12 MiB: the 16 MiB block (the smallest of at most 24), split after 12 MiB; its last 4 MiB stay pooled.
        var small: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 12 * mib)
        XCTAssertEqual(small?.pointer, address)
        XCTAssertTrue(small!.array.allSatisfy { $0 == 0 }, "the requested bytes are zeroed when asked")
        XCTAssertEqual(memory.pool.pooledBytes, 26 * mib)
        XCTAssertEqual(memory.pool.slackBytes, 0)
        XCTAssertLessThanOrEqual(memory.liveBytes + memory.pool.pooledBytes + memory.pool.slackBytes, 40 * mib)
        small = nil
        XCTAssertEqual(memory.pool.slackBytes, 0)
        XCTAssertEqual(memory.pool.pooledBytes, 38 * mib, "both parts pooled")
        // 7 MiB: the 12 MiB part (the smallest of at most 14), split after 8 MiB (whole huge pages): 1 MiB of surplus.
        var seven: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 7 * mib, zeroed: false)
        XCTAssertEqual(seven?.pointer, address)
        XCTAssertEqual(memory.pool.slackBytes, 1 * mib)
        XCTAssertEqual(memory.pool.pooledBytes, 30 * mib)
        XCTAssertLessThanOrEqual(memory.liveBytes + memory.pool.pooledBytes + memory.pool.slackBytes, 40 * mib)
        // 3 MiB: the 4 MiB parts are at most twice as large but leave less than a huge page: taken whole.
        let three = memory.allocate(UInt8.self, count: 3 * mib, zeroed: false)
        XCTAssertEqual(memory.pool.slackBytes, 2 * mib)
        XCTAssertEqual(memory.pool.pooledBytes, 26 * mib)
        seven = nil
        XCTAssertEqual(memory.pool.slackBytes, 1 * mib)
        withExtendedLifetime((three, big, huge, small)) {}
    }

    /// A request that no pooled block serves is made of pooled blocks' pages moved into one range (`mremap`), not of
    /// new pages: the bytes written before the blocks were freed are still there, and no more memory is held; a block
    /// only partly needed leaves the rest of its pages pooled.
    func testPooledPagesAreMovedIntoALargerRequest() throws {
        #if os(Linux)
        let memory = MemoryAccount()
        let mib = 1 << 20
        memory.retainLimit = 24 * mib
        var blocks: [AccountedBuffer<UInt8>] = [4, 4, 10].map { memory.allocate(UInt8.self, count: $0 * mib, zeroed: false) }
        for (k, block) in blocks.enumerated() { block.pointer.initialize(repeating: UInt8(k + 1), count: block.count) }
        blocks.removeAll()
        XCTAssertEqual(memory.pool.pooledBytes, 18 * mib)
        // 21 MiB: no pooled block of 21...42 MiB; all 18 MiB of pooled pages move in, 3 MiB are new.
        var large: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 21 * mib, zeroed: false)
        let start = large!.pointer
        XCTAssertEqual(memory.pool.pooledBytes, 0)
        let values = Set(UnsafeBufferPointer(start: start, count: 18 * mib))
        XCTAssertEqual(values, [1, 2, 3], "the pooled blocks' pages (and bytes) make the new block")
        XCTAssertTrue(UnsafeBufferPointer(start: start + 18 * mib, count: 3 * mib).allSatisfy { $0 == 0 },
                      "the rest is new memory")
        start.initialize(repeating: 9, count: 21 * mib)
        // The block (pieces of four mappings) back in the pool, then 11 MiB: split after 12 MiB, across the piece
        // of 10; both parts keep their bytes, and the rest (9 MiB, two pieces) serves the next request of its size.
        large = nil
        let pooled = memory.pool.pooledBytes
        XCTAssertGreaterThanOrEqual(pooled, 21 * mib)
        let first = memory.allocate(UInt8.self, count: 11 * mib, zeroed: false)
        XCTAssertEqual(first.pointer, start)
        XCTAssertEqual(memory.pool.pooledBytes, pooled - 12 * mib)
        let second = memory.allocate(UInt8.self, count: 9 * mib, zeroed: false)
        XCTAssertEqual(second.pointer, start + 12 * mib)
        XCTAssertEqual(memory.pool.pooledBytes, pooled - 21 * mib)
        XCTAssertTrue(UnsafeBufferPointer(start: first.pointer, count: first.count).allSatisfy { $0 == 9 })
        XCTAssertTrue(UnsafeBufferPointer(start: second.pointer, count: second.count).allSatisfy { $0 == 9 })
        first.pointer.initialize(repeating: 4, count: first.count)
        second.pointer.initialize(repeating: 5, count: second.count)
        withExtendedLifetime((first, second, large)) {}
        #else
        throw XCTSkip("moving pages (mremap) is Linux's")
        #endif
    }

    /// When the bound needs a few MiB given back, a larger pooled block gives back only its tail (whole huge pages)
    /// and stays pooled, with its bytes, under the smaller size; before, the whole block went and was faulted in
    /// again when a request of its size came back.
    func testShrinkingGivesBackOnlyTheTailThatTheBoundNeeds() throws {
        #if os(Linux)
        let pool = BlockPool(), mib = 1 << 20
        let (block, size) = pool.take(bytes: 20 * mib, live: 20 * mib, peak: 20 * mib)
        block.initializeMemory(as: UInt8.self, repeating: 7, count: 20 * mib)
        pool.give(block, bytes: 20 * mib, blockBytes: size, live: 0, peak: 20 * mib)
        XCTAssertEqual(pool.pooledBytes, 20 * mib)
        // A 1 MiB request within the same 20 MiB bound: 1 MiB must go, so the block keeps its first 18 MiB.
        let (small, smallSize) = pool.take(bytes: mib, live: mib, peak: 20 * mib)
        XCTAssertEqual(pool.pooledBytes, 18 * mib)
        let (again, againSize) = pool.take(bytes: 18 * mib, live: 19 * mib, peak: 20 * mib)
        XCTAssertEqual(again, block, "the trimmed block serves a request of its new size")
        XCTAssertEqual(againSize, 18 * mib)
        XCTAssertTrue(UnsafeBufferPointer(start: again.assumingMemoryBound(to: UInt8.self), count: 18 * mib)
            .allSatisfy { $0 == 7 })
        XCTAssertEqual(pool.pooledBytes, 0)
        pool.give(small, bytes: mib, blockBytes: smallSize, live: 18 * mib, peak: 20 * mib)
        pool.give(again, bytes: 18 * mib, blockBytes: againSize, live: 0, peak: 20 * mib)
        #else
        throw XCTSkip("the pool maps its blocks itself on Linux only")
        #endif
    }

    func testAPartlyNeededPooledBlockLeavesTheRestPooled() throws {
        #if os(Linux)
        let memory = MemoryAccount()
        let mib = 1 << 20
        var big: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 10 * mib, zeroed: false)
        big!.pointer.initialize(repeating: 7, count: big!.count)
        big = nil
        // 4 MiB: the 10 MiB block is more than twice as large, so 4 MiB of its pages are moved and 6 MiB stay pooled.
        var small: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 4 * mib, zeroed: false)
        XCTAssertTrue(UnsafeBufferPointer(start: small!.pointer, count: small!.count).allSatisfy { $0 == 7 })
        XCTAssertEqual(memory.pool.pooledBytes, 6 * mib)
        XCTAssertLessThanOrEqual(memory.liveBytes + memory.pool.pooledBytes, memory.poolBound)
        // Both pieces serve later requests: the 6 MiB one exactly, the 4 MiB one when it comes back.
        small = nil
        XCTAssertEqual(memory.pool.pooledBytes, 10 * mib)
        let six = memory.allocate(UInt8.self, count: 6 * mib, zeroed: false)
        XCTAssertTrue(UnsafeBufferPointer(start: six.pointer, count: six.count).allSatisfy { $0 == 7 })
        XCTAssertEqual(memory.pool.pooledBytes, 4 * mib)
        withExtendedLifetime((big, small, six)) {}
        #else
        throw XCTSkip("moving pages (mremap) is Linux's")
        #endif
    }

    /// During a run the pool may keep a quarter more than the plan's predicted peak, never past the budget, and never
    /// less than the predicted peak (a plan over its budget, relaxed with a warning).
    func testRunRetainLimitIsAQuarterAboveThePredictedPeakWithinTheBudget() {
        XCTAssertEqual(MemoryAccount.retainLimit(predictedPeak: 400, budget: 1000), 500)
        XCTAssertEqual(MemoryAccount.retainLimit(predictedPeak: 400, budget: 450), 450)
        XCTAssertEqual(MemoryAccount.retainLimit(predictedPeak: 400, budget: 300), 400)
        XCTAssertEqual(MemoryAccount.retainLimit(predictedPeak: 0, budget: 300), 0)
    }
}
