#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file descriptor held in reserve (of `/dev/null`) for a run's cleanup, given back when the value is destroyed
/// (set the optional holding it to nil): a run that failed for want of descriptors (`ulimit -n`) may hold every one
/// it may open, and removing its partial output (listing the folder) or saving a ledger takes one. `OutputDirectory`
/// and `PartitionOutput` hold one from their start and drop it before they clean up.
struct SpareDescriptor: ~Copyable {
    private let descriptor: Int32

    /// Opens the spare; nil, with `errno` set, when no descriptor is left.
    init?() {
        let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}
