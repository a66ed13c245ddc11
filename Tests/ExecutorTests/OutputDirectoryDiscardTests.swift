@testable import Executor
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `OutputDirectory.discard` and `PartitionOutput.withdraw`/`close` after a run failed for want of file descriptors:
/// the process holds every descriptor it may open, and the partial output (which, holding a shard ledger, would
/// pass for a killed run's resumable output) must still be removed, with the lock; a partition's ledger must still
/// be put back.
final class OutputDirectoryDiscardTests: XCTestCase {
    /// Runs `body` while every descriptor this process may open is taken (under a lowered soft limit, restored
    /// after); returns the errno of the open that found none.
    private func withNoDescriptorLeft(_ body: () -> Void) -> Int32 {
        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved), 0)
        var lowered = saved
        lowered.rlim_cur = min(saved.rlim_cur, 4096)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)
        var taken: [Int32] = []
        while true {
            let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if fd < 0 { break }
            taken.append(fd)
        }
        let exhausted = errno
        body()
        for fd in taken { close(fd) }
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved), 0)
        return exhausted
    }

    func testDiscardRemovesThePartialOutputWhenNoDescriptorIsLeft() throws {
        let parent = (NSTemporaryDirectory() as NSString).appendingPathComponent("mergegraph-discard-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let out = try OutputDirectory(destination: "\(parent)/out", overwrite: false)
        try out.write(OutputDirectory.ledgerName, "{}")
        try out.write("model-00001-of-00002.safetensors", "x")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.staging))

        let exhausted = withNoDescriptorLeft { out.discard() }
        XCTAssertEqual(exhausted, EMFILE)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.staging), "the partial output was left behind")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.lockPath), "the lock was left behind")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), [])
    }

    func testAWithdrawingPartitionPutsItsLedgerBackWhenNoDescriptorIsLeft() throws {
        let parent = (NSTemporaryDirectory() as NSString).appendingPathComponent("mergegraph-discard-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let out = try PartitionOutput(destination: parent, partition: PartitionID(index: 1, count: 2), overwrite: false,
                                      protected: [])
        let kept = ShardLedger(plan: "p", partition: "1/2",
                               shards: ["model-00001-of-00002.safetensors": .init(bytes: 1, sha256: "00")])
        try "x".write(toFile: out.stagingPath("model-00002-of-00002.safetensors"), atomically: false, encoding: .utf8)
        try out.publish("model-00002-of-00002.safetensors")
        let exhausted = withNoDescriptorLeft {
            out.withdraw(keeping: kept)
            out.close()
        }
        XCTAssertEqual(exhausted, EMFILE)
        XCTAssertEqual(ShardLedger.load(out.ledgerPath)?.shards.keys.sorted(), ["model-00001-of-00002.safetensors"],
                       "the ledger was not put back")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.finalPath("model-00002-of-00002.safetensors")),
                       "the shard this run published was left")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.stagingPath("")), "the staging folder was left behind")
    }
}
