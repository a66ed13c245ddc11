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
        // A different size, more than twice as large as no pooled block: the pooled 8 MiB would make 8 + 3 > the
        // 8 MiB peak, so it goes back to the system.
        let b = memory.allocate(UInt8.self, count: 3 * mib, zeroed: false)
        XCTAssertEqual(memory.pool.pooledBytes, 0)
        XCTAssertEqual(memory.liveBytes, 3 * mib)
        XCTAssertLessThanOrEqual(memory.liveBytes + memory.pool.pooledBytes, memory.peakBytes)
        // With a retain limit the pool may hold more than the peak so far, never more than the limit.
        memory.retainLimit = 20 * mib
        var c: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 10 * mib, zeroed: false)
        c = nil
        let d = memory.allocate(UInt8.self, count: 2 * mib, zeroed: false)
        XCTAssertEqual(memory.pool.pooledBytes, 10 * mib)
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

    /// A request with no pooled block of its size takes the smallest pooled block of at most twice its size; the
    /// surplus counts against the bound while the block is in use, and the block comes back whole.
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
        // 12 MiB: the 16 MiB block (the smallest of at most 24), 4 MiB of it surplus.
        var small: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 12 * mib)
        XCTAssertEqual(small?.pointer, address)
        XCTAssertTrue(small!.array.allSatisfy { $0 == 0 }, "the requested bytes are zeroed when asked")
        XCTAssertEqual(memory.pool.pooledBytes, 22 * mib)
        XCTAssertEqual(memory.pool.slackBytes, 4 * mib)
        XCTAssertLessThanOrEqual(memory.liveBytes + memory.pool.pooledBytes + memory.pool.slackBytes, 40 * mib)
        small = nil
        XCTAssertEqual(memory.pool.slackBytes, 0)
        XCTAssertEqual(memory.pool.pooledBytes, 38 * mib, "the block came back whole")
        // 7 MiB: no pooled block of at most 14 MiB, so a new block is made after giving back what the bound needs
        // (7 + 38 > 40: the 22 MiB block, the largest).
        let seven = memory.allocate(UInt8.self, count: 7 * mib, zeroed: false)
        XCTAssertNotEqual(seven.pointer, address)
        XCTAssertEqual(memory.pool.slackBytes, 0)
        XCTAssertEqual(memory.pool.pooledBytes, 16 * mib)
        withExtendedLifetime((seven, big, huge, small)) {}
    }
}
