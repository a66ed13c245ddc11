@testable import Executor
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `OutputDirectory.processEnded`, which decides whether a `.NAME.partial-PID` folder belongs to a killed run: a
/// process that has exited but is not yet reaped (a zombie) has ended, though `kill(pid, 0)` still succeeds on it.
final class ProcessEndedTests: XCTestCase {
    func testAZombieHasEnded() throws {
        var pid: pid_t = 0
        var arguments: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { for argument in arguments { free(argument) } }
        XCTAssertEqual(posix_spawn(&pid, "/bin/true", nil, nil, &arguments, nil), 0)
        // Not reaped yet: wait (without reaping) until it has exited.
        var info = siginfo_t()
        XCTAssertEqual(waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT), 0)
        XCTAssertEqual(kill(pid, 0), 0, "a zombie still answers kill(pid, 0)")
        XCTAssertTrue(OutputDirectory.processEnded(pid), "an exited, unreaped process counts as ended")
        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        XCTAssertTrue(OutputDirectory.processEnded(pid), "a reaped process has ended")
        XCTAssertFalse(OutputDirectory.processEnded(getpid()), "this process runs")
    }
}
