import Foundation
import IR

/// Which share of a plan's output shards a partitioned run computes: worker `index` of `count` (1-based), by the
/// plan's `Partitioning`.
public struct PartitionID: Hashable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// `I/N`.
    public var description: String { "\(index)/\(count)" }

    /// The file-name form, `partition-I-of-N`.
    var fileStem: String { "partition-\(index)-of-\(count)" }
}

/// The output directory of a partitioned run (`run --partition I/N`), shared by every worker: each writes its
/// shards under `OUT/.mergegraph/partition-I-of-N.partial/` and renames each finished one into `OUT`, recording it
/// (size, SHA-256) in its ledger `OUT/.mergegraph/partition-I-of-N.json`; `finalize` later checks every shard and
/// writes the index, config and tokenizer files. Each worker holds a lock of its own
/// (`OUT/.mergegraph/partition-I-of-N.lock`), so N workers write into one `OUT` at once while a second run of the
/// same partition fails at once.
///
/// `OUT` may not be, contain or lie inside an input model, nor contain the config or the working directory; it may
/// hold only what partitioned runs and `finalize` write (shards, `.mergegraph/`), unless `overwrite`. Sendable: its
/// paths are constant and `publish` (called from the shard recorder's queue) only renames; `close` runs after it.
public final class PartitionOutput: @unchecked Sendable {
    /// The shared output directory, absolute.
    public let destination: String
    /// `OUT/.mergegraph`.
    public let controlDirectory: String
    /// Where this worker writes shards before renaming them into `OUT`.
    public let staging: String
    /// This worker's ledger.
    public let ledgerPath: String
    public let partition: PartitionID
    private var lockDescriptor: Int32 = -1
    private let lockPath: String

    /// The folder of control files inside an output directory.
    public static let controlName = ".mergegraph"

    /// Opens `destination` for partition `partition`: creates it and its control folder, takes the partition's lock
    /// and (re)creates the partition's staging folder.
    /// - Throws: `ExecutionError` naming the path: a protected path overlapped, foreign files without `overwrite`,
    ///   the partition already running (its pid), a folder that cannot be created.
    public init(destination: String, partition: PartitionID, overwrite: Bool,
                protected: [ProtectedPath]) throws(ExecutionError) {
        self.partition = partition
        let url = URL(fileURLWithPath: destination).standardizedFileURL
        try OutputDirectory.refuseInsideInputs(OutputDirectory.resolvedPrefix(url.path), protected: protected)
        let path = try OutputDirectory.makeDirectories(url.path, for: url.path)
        self.destination = path
        try OutputDirectory.refuseOverlap(path, protected: protected)
        if !overwrite, let foreign = OutputDirectory.foreignEntry(in: path, besides: [Self.controlName]) {
            throw .refused(path: path, "holds '\(foreign)', which a partitioned run does not write; choose an empty "
                           + "directory (or --overwrite to replace a previous model output)")
        }
        controlDirectory = (path as NSString).appendingPathComponent(Self.controlName)
        if mkdir(controlDirectory, 0o777) != 0, errno != EEXIST {
            throw .io(path: controlDirectory, "cannot create: \(String(cString: strerror(errno)))")
        }
        lockPath = (controlDirectory as NSString).appendingPathComponent(partition.fileStem + ".lock")
        staging = (controlDirectory as NSString).appendingPathComponent(partition.fileStem + ".partial")
        ledgerPath = (controlDirectory as NSString).appendingPathComponent(partition.fileStem + ".json")
        lockDescriptor = try OutputDirectory.lock(lockPath, destination: "\(path) (partition \(partition))")
        try? FileManager.default.removeItem(atPath: staging)
        guard mkdir(staging, 0o777) == 0 else {
            let reason = String(cString: strerror(errno))
            releaseLock()
            throw .io(path: staging, "cannot create: \(reason)")
        }
        OutputDirectory.register(self, staging: staging, lock: lockPath)
    }

    deinit { close() }

    /// Where shard `name` (relative to `OUT`) is written before it is published.
    public func stagingPath(_ name: String) -> String { (staging as NSString).appendingPathComponent(name) }

    /// Where shard `name` lies once published.
    public func finalPath(_ name: String) -> String { (destination as NSString).appendingPathComponent(name) }

    /// Moves finished shard `name` (synced to disk) from the staging folder into `OUT`, replacing an older copy.
    /// - Throws: `ExecutionError.io` naming the shard.
    public func publish(_ name: String) throws(ExecutionError) {
        let target = finalPath(name)
        let folder = (target as NSString).deletingLastPathComponent
        if mkdir(folder, 0o777) != 0, errno != EEXIST {
            throw .io(path: folder, "cannot create: \(String(cString: strerror(errno)))")
        }
        guard rename(stagingPath(name), target) == 0 else {
            throw .io(path: target, "cannot move the finished shard into place: \(String(cString: strerror(errno)))")
        }
        ShardLedger.syncDirectory(folder)
    }

    /// Removes the staging folder and releases the lock (the ledger stays for `finalize` and `--resume`).
    public func close() {
        OutputDirectory.unregister(self)
        try? FileManager.default.removeItem(atPath: staging)
        releaseLock()
    }

    private func releaseLock() {
        guard lockDescriptor >= 0 else { return }
        unlink(lockPath)
        Glibc.close(lockDescriptor)
        lockDescriptor = -1
    }
}
