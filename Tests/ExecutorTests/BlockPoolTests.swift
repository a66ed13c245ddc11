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

    func testHeldPlusPooledStaysWithinTheBound() {
        let memory = MemoryAccount()
        let mib = 1 << 20
        var a: AccountedBuffer<UInt8>? = memory.allocate(UInt8.self, count: 8 * mib, zeroed: false)
        a = nil
        XCTAssertEqual(memory.pool.pooledBytes, 8 * mib)
        // A different size: the pooled 8 MiB would make 8 + 6 > the 8 MiB peak, so it goes back to the system.
        let b = memory.allocate(UInt8.self, count: 6 * mib, zeroed: false)
        XCTAssertEqual(memory.pool.pooledBytes, 0)
        XCTAssertEqual(memory.liveBytes, 6 * mib)
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
}
