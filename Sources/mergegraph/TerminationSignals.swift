import Executor
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT and SIGTERM are blocked in every thread (installed before any other thread starts, so all inherit the
/// mask) and taken by one dedicated thread with `sigwait`: it removes the partial output directories and locks of
/// the run (and says so when there were any), then exits with 128 + the signal (130 for SIGINT, 143 for SIGTERM).
///
/// SIGPIPE is ignored: a standard output or error whose reader has gone (`mergegraph run … --dump-ir | head`) makes
/// those writes fail, not the process die. The merge goes on and finishes its output (its messages are lost);
/// killed by the signal, it left its partial output directory and lock behind, said nothing and exited with 141,
/// even after writing the whole model.
enum TerminationSignals {
    static func install() {
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let signals = set
        let thread = Thread {
            var waited = signals
            while true {
                var number: Int32 = 0
                guard sigwait(&waited, &number) == 0 else { continue }
                let cleanUp = OutputDirectory.cleanUpForExit()
                let name = number == SIGINT ? "SIGINT" : "SIGTERM"
                let message = "\ninterrupted (\(name))" + cleanUp.summary + "\n"
                _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
                fflush(nil)
                _exit(128 + number)
            }
        }
        thread.start()
    }
}
