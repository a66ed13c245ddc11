import Foundation
import IR
import Synchronization

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
/// hold only what partitioned runs and `finalize` write (shards, `.mergegraph/`), unless `overwrite`. A run that fails
/// calls `withdraw` before `close`: the shards it published are removed and its ledger is put back as the run began,
/// so a failed worker leaves no shard and no ledger entry of its own (a killed one leaves both, for `--resume`).
/// Sendable: its paths are constant, `publish` (called from the shard recorder's queue) renames and notes what it
/// published under a lock; `withdraw` and `close` run after the recorder has stopped.
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
    /// Dropped when a failed run withdraws (`withdraw`, `close`), so that saving the ledger and removing the staging
    /// folder have a descriptor even when the run failed for want of them.
    private var spare: SpareDescriptor?
    private let lockPath: String
    /// The shards this run renamed into `OUT` (names relative to it), with the device and inode each had then.
    private let published = Mutex<[(name: String, device: UInt64, inode: UInt64)]>([])

    /// The folder of control files inside an output directory.
    public static let controlName = ".mergegraph"

    /// The first file in `directory` that only a finished output has (`config.json`, the index: `finalize` and
    /// ordinary runs write them, partition workers never do), or nil.
    static func finishedOutputFile(in directory: String) -> String? {
        ["config.json", "model.safetensors.index.json"].first {
            FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0))
        }
    }

    /// Opens `destination` for partition `partition`: creates it and its control folder, takes the partition's lock
    /// and (re)creates the partition's staging folder.
    /// - Throws: `ExecutionError` naming the path: a protected path overlapped, foreign files or a finished model
    ///   output without `overwrite`, the partition already running (its pid), a folder that cannot be created.
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
        // A finished model output (`finalize`'s or an ordinary run's: workers write neither file) is replaced only
        // with --overwrite; without this check a worker would swap its shards in over the old model's, and withdraw
        // them again if it failed, leaving the old model without them.
        if !overwrite, let finished = Self.finishedOutputFile(in: path) {
            throw .refused(path: path, "holds a finished model output ('\(finished)'); use --overwrite to replace it")
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
        guard let opened = SpareDescriptor(), mkdir(staging, 0o777) == 0 else {
            let reason = String(cString: strerror(errno))
            releaseLock()
            throw .io(path: staging, "cannot create: \(reason)")
        }
        spare = consume opened
        OutputDirectory.register(self, staging: staging, lock: lockPath, partition: "\(partition)")
    }

    deinit { close() }

    /// Where shard `name` (relative to `OUT`) is written before it is published.
    public func stagingPath(_ name: String) -> String { (staging as NSString).appendingPathComponent(name) }

    /// Where shard `name` lies once published.
    public func finalPath(_ name: String) -> String { (destination as NSString).appendingPathComponent(name) }

    /// Moves finished shard `name` (synced to disk) from the staging folder into `OUT`, replacing an older copy, and
    /// notes it as this run's (`withdraw`).
    /// - Throws: `ExecutionError.io` naming the shard.
    public func publish(_ name: String) throws(ExecutionError) {
        let target = finalPath(name)
        let folder = (target as NSString).deletingLastPathComponent
        if mkdir(folder, 0o777) != 0, errno != EEXIST {
            throw .io(path: folder, "cannot create: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(stagingPath(name), &info) == 0, rename(stagingPath(name), target) == 0 else {
            throw .io(path: target, "cannot move the finished shard into place: \(String(cString: strerror(errno)))")
        }
        published.withLock { $0.append((name, UInt64(info.st_dev), UInt64(info.st_ino))) }
        ShardLedger.syncDirectory(folder)
    }

    /// Undoes a failed run's part of `OUT`: puts the partition's ledger back to `ledger` (the shards kept from
    /// before this run, as saved when it began; the ledger is removed when that records none, or when it cannot be
    /// saved), then removes each shard this run published that is still the file it renamed into place. Nothing
    /// else is touched: shards of other partitions, shards kept by `--resume`, folders. Call it once nothing
    /// publishes or records any more (`ShardRecorder.abandon`), before `close`.
    public func withdraw(keeping ledger: ShardLedger) {
        spare = nil
        if ledger.shards.isEmpty {
            unlink(ledgerPath)
        } else {
            do { try ledger.save(ledgerPath) } catch { unlink(ledgerPath) }
        }
        for shard in published.withLock({ $0 }) {
            let path = finalPath(shard.name)
            var info = stat()
            guard lstat(path, &info) == 0, UInt64(info.st_dev) == shard.device, UInt64(info.st_ino) == shard.inode else {
                continue
            }
            unlink(path)
        }
        published.withLock { $0 = [] }
        ShardLedger.syncDirectory(destination)
    }

    /// Removes the staging folder and releases the lock (the ledger stays for `finalize` and `--resume`).
    public func close() {
        OutputDirectory.unregister(self)
        spare = nil
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
