import CFileOps
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A path the output directory must never replace, contain or (for input models) sit inside.
public struct ProtectedPath: Sendable, Hashable {
    /// What the path is, for the messages and for which containments are refused.
    public enum Kind: Sendable, Hashable {
        /// An input model directory: OUT_DIR may neither contain it nor lie inside it.
        case inputModel
        /// The config file: OUT_DIR may not contain it.
        case configFile
        /// The working directory: OUT_DIR may not be it or contain it.
        case workingDirectory
    }

    public var path: String
    public var kind: Kind

    public init(_ path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    var label: String {
        switch kind {
        case .inputModel: return "the input model directory"
        case .configFile: return "the config file"
        case .workingDirectory: return "the working directory"
        }
    }
}

/// The output directory protocol: nothing is deleted that the run did not create or that does not look like a
/// previous model output.
///
/// - `OUT_DIR` is locked for the whole run (`flock` on `.NAME.lock` beside it, holding the owner's pid); a second run
///   fails at once naming the holder.
/// - Stale `.NAME.partial-PID` siblings whose process is gone are swept.
/// - An existing `OUT_DIR` is refused when it is, contains or lies inside an input model directory, or contains the
///   config file or the working directory (symlinks resolved); when it is not empty it is replaced only with
///   `--overwrite` and only when it holds nothing but what a model output holds.
/// - The model is written into `.NAME.partial-PID` and committed with an atomic exchange (`renameat2`
///   `RENAME_EXCHANGE`), after which the old directory is removed; a crash leaves either the old or the new one in
///   place, never neither.
/// - `SIGINT`/`SIGTERM` (through `OutputDirectory.cleanUpForExit`) remove the partial directory and the lock.
/// - A partial directory left by a killed run that holds a shard ledger (`ShardLedger`, `ledgerName`) is kept: a
///   run with `resume` set to the same plan's fingerprint adopts it as its own staging directory; any other run
///   leaves it alone (with a note) and the next commit to the same destination removes it.
public final class OutputDirectory {
    /// The destination, absolute, with its parent's symlinks resolved.
    public let destination: String
    /// The hidden sibling the model is written into.
    public let staging: String
    let lockPath: String
    private var lockDescriptor: Int32
    /// Dropped before a failed run removes its partial output, so that the removal has a descriptor even when the
    /// run failed for want of them.
    private var spare: SpareDescriptor?
    private let protected: [ProtectedPath]
    private let overwrite: Bool
    /// Whether the staging directory is a killed run's, adopted to resume it.
    public private(set) var resumed = false
    /// Notes for the user: resumable partial directories found and not resumed.
    public private(set) var notes: [String] = []

    /// The shard ledger's name inside the staging directory (removed before the commit).
    public static let ledgerName = ".mergegraph-shards.json"

    /// Opens the output protocol for `destination`: creates missing parents, takes the lock, sweeps stale partial
    /// directories, checks what would be replaced and creates the staging directory.
    /// With `resume` (a plan fingerprint), a partial directory of a killed run whose ledger has that fingerprint is
    /// adopted as the staging directory (`resumed`).
    public init(destination: String, overwrite: Bool, protected: [ProtectedPath] = [],
                resume: String? = nil) throws(ExecutionError) {
        let url = URL(fileURLWithPath: destination).standardizedFileURL
        let name = url.lastPathComponent
        guard !name.isEmpty, name != "/", name != ".", name != ".." else {
            throw .refused(path: url.path, "cannot be the output directory")
        }
        // Before any folder is created: a destination inside an input model is refused whether or not it exists.
        try Self.refuseInsideInputs(Self.resolvedPrefix(url.path), protected: protected)
        let parent = try Self.makeDirectories(url.deletingLastPathComponent().path, for: url.path)
        var path = (parent as NSString).appendingPathComponent(name)
        // A destination that is a symlink is followed: the directory it names is what would be replaced.
        if Self.isSymlink(path), let real = Self.realPath(path) { path = real }
        let folder = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        self.destination = path
        self.overwrite = overwrite
        self.protected = protected
        lockPath = (folder as NSString).appendingPathComponent(".\(base).lock")
        staging = (folder as NSString).appendingPathComponent(".\(base).partial-\(getpid())")
        lockDescriptor = try Self.lock(lockPath, destination: path)
        do throws(ExecutionError) {
            guard let opened = SpareDescriptor() else {
                throw .io(path: path, "cannot create the output directory: \(String(cString: strerror(errno))) (one "
                          + "descriptor is kept for removing the partial output if the run fails)")
            }
            spare = consume opened
            let resumable = Self.sweepStalePartials(in: folder, name: base, keepingLedgers: true)
            try checkReplaceable()
            var adopted: String?
            if let resume {
                let matching = resumable.filter { $0.ledger.plan == resume }
                adopted = matching.max { $0.ledger.shards.count < $1.ledger.shards.count }?.path
                if adopted == nil {
                    notes.append(resumable.isEmpty ? "--resume: no partial output of a killed run was found beside \(path); starting from the beginning"
                                 : "--resume: the partial output(s) beside \(path) were made by a different plan (config, inputs or options differ); starting from the beginning")
                }
            } else {
                for leftover in resumable {
                    notes.append("note: \(leftover.path) holds \(leftover.ledger.shards.count) finished shard(s) of a killed run; "
                                 + "run again with --resume to continue it (it is removed when a run into \(path) completes)")
                }
            }
            if Self.exists(staging) {
                // Only a dead process with our pid can have left it (the lock excludes live ones).
                guard Self.foreignEntry(in: staging) == nil else {
                    throw .refused(path: staging, "exists and holds files that are not a model output; remove it")
                }
                try? FileManager.default.removeItem(atPath: staging)
            }
            if let adopted {
                guard rename(adopted, staging) == 0 else {
                    throw .io(path: adopted, "cannot take over the killed run's partial output: \(String(cString: strerror(errno)))")
                }
                resumed = true
            } else if mkdir(staging, 0o777) != 0 {
                throw .io(path: path, "cannot create the output directory: its partial directory \(staging) cannot be "
                          + "created: \(String(cString: strerror(errno)))")
            }
            Self.registry.withLock { $0.partials[ObjectIdentifier(self)] = (staging, lockPath, nil) }
        } catch {
            spare = nil
            releaseLock()
            throw error
        }
    }

    deinit { releaseLock() }

    public func path(_ name: String) -> String { (staging as NSString).appendingPathComponent(name) }

    /// Creates the folder that will hold `name` (a path relative to the output directory).
    func makeDirectory(for name: String) throws(ExecutionError) {
        let folder = (path(name) as NSString).deletingLastPathComponent
        // Never recreate the staging directory after a signal removed it.
        let terminating = Self.registry.withLock { $0.terminating }
        guard !terminating, Self.exists(staging) else { throw .io(path: staging, "the partial output was removed") }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw .io(path: folder, "cannot create: \(Self.reason(error))")
        }
    }

    func write(_ name: String, _ text: String) throws(ExecutionError) {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)))
        } catch {
            throw .io(path: path(name), "cannot write: \(Self.reason(error))")
        }
    }

    func copy(from source: String, name: String) throws(ExecutionError) {
        do {
            try FileManager.default.copyItem(atPath: source, toPath: path(name))
        } catch {
            throw .io(path: source, "cannot copy: \(Self.reason(error))")
        }
    }

    /// Moves the finished model into place: an atomic exchange with an existing destination (checked again under
    /// the lock), whose old contents are then removed; a rename that refuses to replace when there is none.
    public func commit() throws(ExecutionError) {
        spare = nil
        try Self.registry.withLock { state throws(ExecutionError) in
            guard !state.terminating else { throw ExecutionError.io(path: staging, "interrupted") }
            try commitLocked()
            state.partials[ObjectIdentifier(self)] = nil
        }
        // The finished output supersedes what killed runs left.
        _ = Self.sweepStalePartials(in: (destination as NSString).deletingLastPathComponent,
                                    name: (destination as NSString).lastPathComponent, keepingLedgers: false)
        releaseLock()
    }

    private func commitLocked() throws(ExecutionError) {
        if Self.exists(destination) || Self.isSymlink(destination) {
            try checkReplaceable()
            if mg_rename_exchange(staging, destination) == 0 {
                // `staging` now holds the previous output, checked above to hold only model files.
                try? FileManager.default.removeItem(atPath: staging)
                return
            }
            let code = errno
            guard code == EINVAL || code == ENOSYS || code == ENOTSUP || code == EOPNOTSUPP else {
                throw .io(path: destination, "cannot move the finished model into place: \(String(cString: strerror(code)))")
            }
            // The file system cannot exchange: move the old output aside, the new one in, then remove the old.
            let aside = staging + ".old"
            guard rename(destination, aside) == 0 else {
                throw .io(path: destination, "cannot move the previous output aside: \(String(cString: strerror(errno)))")
            }
            guard rename(staging, destination) == 0 else {
                let failure = String(cString: strerror(errno))
                _ = rename(aside, destination)
                throw .io(path: destination, "cannot move the finished model into place: \(failure)")
            }
            try? FileManager.default.removeItem(atPath: aside)
            return
        }
        if mg_rename_noreplace(staging, destination) == 0 { return }
        let code = errno
        if code == EEXIST || code == ENOTEMPTY {
            throw .refused(path: destination, "appeared while the model was being written; the merged model is left in \(staging)")
        }
        guard code == EINVAL || code == ENOSYS || code == ENOTSUP || code == EOPNOTSUPP, rename(staging, destination) == 0 else {
            throw .io(path: destination, "cannot move the finished model into place: \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the partial output after a failure and releases the lock. The spare descriptor is closed first: a run
    /// that failed for want of descriptors may hold every one it may open, and listing the folder takes one.
    public func discard() {
        spare = nil
        Self.registry.withLock { state in
            _ = state.partials.removeValue(forKey: ObjectIdentifier(self))
            if Self.exists(staging) { try? FileManager.default.removeItem(atPath: staging) }
        }
        releaseLock()
    }

    private func releaseLock() {
        guard lockDescriptor >= 0 else { return }
        // Unlinked while still held, so a waiting run never locks a file that is no longer the lock.
        unlink(lockPath)
        close(lockDescriptor)
        lockDescriptor = -1
    }

    // MARK: Signals

    private struct Registry {
        /// Partial folders and locks; `partition` names a `--partition` worker's (whose published shards stay).
        var partials: [ObjectIdentifier: (staging: String, lock: String, partition: String?)] = [:]
        var terminating = false
    }

    private static let registry = Mutex(Registry())

    /// Records `owner`'s partial folder and lock for removal on SIGINT/SIGTERM (a `--partition` worker's, for
    /// partition `partition`, e.g. "2/3").
    static func register(_ owner: AnyObject, staging: String, lock: String, partition: String) {
        registry.withLock { $0.partials[ObjectIdentifier(owner)] = (staging, lock, partition) }
    }

    /// Forgets what `register` recorded for `owner`.
    static func unregister(_ owner: AnyObject) {
        registry.withLock { _ = $0.partials.removeValue(forKey: ObjectIdentifier(owner)) }
    }

    /// What `cleanUpForExit` removed: how many partial outputs of ordinary runs, and the partitions (e.g. "2/3")
    /// whose shard in progress it removed, keeping the shards they published for `--resume`.
    public struct CleanUp: Sendable {
        public var partialOutputs = 0
        public var partitions: [String] = []

        /// The end of the interrupt message: what was removed and what was kept (empty when nothing was written).
        public var summary: String {
            var parts: [String] = []
            if partialOutputs > 0 { parts.append("the partial output was removed") }
            for partition in partitions {
                parts.append("partition \(partition)'s shard in progress was removed; the shards it published are kept "
                             + "(rerun it with --resume)")
            }
            return parts.isEmpty ? "" : ": " + parts.joined(separator: "; ")
        }
    }

    /// Removes every partial output directory and lock of this process; called on SIGINT/SIGTERM before exiting.
    /// Waits for a commit in progress to finish (a committed output is no longer partial). Later attempts to
    /// create folders in a partial output fail. Returns what there was (nothing when the signal came before any
    /// output, or during a command that writes none, such as `finalize`).
    @discardableResult
    public static func cleanUpForExit() -> CleanUp {
        registry.withLock { state in
            state.terminating = true
            var cleanUp = CleanUp()
            for (staging, lock, partition) in state.partials.values {
                for _ in 0..<3 where exists(staging) { try? FileManager.default.removeItem(atPath: staging) }
                unlink(lock)
                if let partition { cleanUp.partitions.append(partition) } else { cleanUp.partialOutputs += 1 }
            }
            state.partials = [:]
            return cleanUp
        }
    }

    // MARK: Checks

    /// Refuses a destination that is not a directory, overlaps a protected path, or is not empty (without
    /// `overwrite`) or holds something a model output does not (with it).
    private func checkReplaceable() throws(ExecutionError) {
        guard Self.exists(destination) else { return }
        var info = stat()
        guard lstat(destination, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw .io(path: destination, "exists and is not a directory")
        }
        try Self.refuseOverlap(destination, protected: protected)
        var contents = (try? FileManager.default.contentsOfDirectory(atPath: destination)) ?? []
        // A `--partition` worker that failed leaves its control directory empty (another worker may have been about
        // to lock inside): alone, it counts as empty, and this run removes it (`rmdir` removes only an empty one).
        let control = (destination as NSString).appendingPathComponent(PartitionOutput.controlName)
        if contents == [PartitionOutput.controlName], rmdir(control) == 0 { contents = [] }
        guard !contents.isEmpty else { return }
        // Partitions' work in progress: neither an ordinary run nor --overwrite replaces it (said at once, rather
        // than "use --overwrite" followed by --overwrite's refusal of the control folder).
        if contents.contains(PartitionOutput.controlName) {
            throw .refused(path: destination, "holds the work of partitioned runs (\(PartitionOutput.controlName)/): "
                           + "finish it with mergegraph finalize CONFIG OUT, or remove \(PartitionOutput.controlName)/ "
                           + "and the shards yourself to start over")
        }
        guard overwrite else { throw .outputExists(path: destination) }
        if let foreign = Self.foreignEntry(in: destination) {
            throw .refused(path: destination, "holds '\(foreign)', which is not part of a model output; "
                           + "--overwrite replaces only a previous model output (remove it yourself if you mean it)")
        }
    }

    /// Throws `refused` when `destination` (an existing directory, resolved) is a protected path other than the
    /// config, contains one, or lies inside an input model.
    static func refuseOverlap(_ destination: String, protected: [ProtectedPath]) throws(ExecutionError) {
        for item in protected {
            let target = Self.realPath(item.path) ?? URL(fileURLWithPath: item.path).standardizedFileURL.path
            let same = target == destination
            let containsIt = target.hasPrefix(destination == "/" ? "/" : destination + "/")
            let insideIt = destination.hasPrefix(target == "/" ? "/" : target + "/")
            if same && item.kind != .configFile {
                throw .refused(path: destination, "is \(item.label); it will not be replaced")
            }
            if containsIt {
                throw .refused(path: destination, "contains \(item.label) \(target); it will not be replaced")
            }
            if insideIt && item.kind == .inputModel {
                throw .refused(path: destination, "is inside \(item.label) \(target); it will not be replaced")
            }
        }
    }

    /// `path` with its longest existing prefix's symlinks resolved (the rest, not yet created, appended as written).
    static func resolvedPrefix(_ path: String) -> String {
        var head = path, tail: [String] = []
        while !head.isEmpty, head != "/", realPath(head) == nil {
            tail.insert((head as NSString).lastPathComponent, at: 0)
            head = (head as NSString).deletingLastPathComponent
        }
        let base = realPath(head.isEmpty ? "." : head) ?? head
        return tail.reduce(base) { ($0 as NSString).appendingPathComponent($1) }
    }

    /// Throws `refused` when `destination` (resolved) is an input model directory or lies inside one.
    static func refuseInsideInputs(_ destination: String, protected: [ProtectedPath]) throws(ExecutionError) {
        for item in protected where item.kind == .inputModel {
            let target = realPath(item.path) ?? URL(fileURLWithPath: item.path).standardizedFileURL.path
            if target == destination {
                throw .refused(path: destination, "is \(item.label); it will not be replaced")
            }
            if destination.hasPrefix(target == "/" ? "/" : target + "/") {
                throw .refused(path: destination, "is inside \(item.label) \(target); it will not be written there")
            }
        }
    }

    /// The files a model output holds, besides `model*.safetensors`.
    static let outputFileNames: Set<String> = Set([
        "model.safetensors.index.json", "config.json", "generation_config.json", "README.md", "mergekit_config.yml",
    ] + PlanExecutor.tokenizerFiles)

    /// The first entry (relative path) of `directory` that a model output would not hold, or nil when it holds
    /// only model files and stage folders that themselves look like outputs. Symlinks count as files by their name.
    /// Top-level entries named in `besides` are skipped (a partitioned output's control folder).
    static func foreignEntry(in directory: String, depth: Int = 0, besides: Set<String> = []) -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return "." }
        for name in names.sorted() where depth > 0 || !besides.contains(name) {
            let full = (directory as NSString).appendingPathComponent(name)
            var info = stat()
            guard lstat(full, &info) == 0 else { return name }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                guard depth == 0, !name.hasPrefix(".") else { return name + "/" }
                if let inner = foreignEntry(in: full, depth: depth + 1) { return name + "/" + inner }
                continue
            }
            if !isShardName(name) && !outputFileNames.contains(name) { return name }
        }
        return nil
    }

    /// Whether `name` is that of a model output's weights file (`model*.safetensors`).
    static func isShardName(_ name: String) -> Bool { name.hasPrefix("model") && name.hasSuffix(".safetensors") }

    // MARK: Locking and sweeping

    /// Takes an exclusive `flock` on `path` (created if needed), writing our pid into it; fails at once when another
    /// process holds it, naming that process's pid. Errors name `destination`, the output the lock is for, as the
    /// user gave it (resolved), and the lock file.
    static func lock(_ path: String, destination: String) throws(ExecutionError) -> Int32 {
        for _ in 0..<100 {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw .io(path: destination, "cannot create the output directory: its lock file \(path) cannot be "
                          + "created: \(String(cString: strerror(errno)))")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                var buffer = [UInt8](repeating: 0, count: 32)
                let count = pread(fd, &buffer, buffer.count, 0)
                close(fd)
                guard code == EWOULDBLOCK else {
                    throw .io(path: destination, "cannot lock its lock file \(path): \(String(cString: strerror(code)))")
                }
                let pid = count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines) : ""
                throw .locked(path: destination, pid: Int(pid))
            }
            // The holder before us may have unlinked the file after we opened it: lock the file the path names.
            var held = stat(), named = stat()
            if fstat(fd, &held) == 0, stat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                let text = "\(getpid())\n"
                _ = ftruncate(fd, 0)
                _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
                return fd
            }
            close(fd)
        }
        throw .io(path: destination, "cannot lock its lock file \(path): the file keeps changing")
    }

    /// Whether process `pid` has ended: it no longer exists, or (Linux) it is a zombie that its parent has not reaped
    /// yet (`/proc/PID/stat` state `Z` or `X`). A run killed a moment ago under a supervisor slow to reap it is such a
    /// zombie, and `kill(pid, 0)` still succeeds on it: taken for a live run, its partial output was neither resumed
    /// nor removed.
    static func processEnded(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 { return errno == ESRCH }
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        // The state follows the command name, which is in parentheses and may itself hold ')' or spaces.
        let state = stat[close...].dropFirst().drop { $0 == " " }.first
        return state == "Z" || state == "X"
        #else
        return false
        #endif
    }

    /// Removes `.NAME.partial-PID` siblings whose process has ended (`processEnded`) and that hold only model files (and,
    /// unless `keepingLedgers`, a shard ledger, or the temporary file of one being written); returns the ones kept for
    /// their ledger, with it.
    private static func sweepStalePartials(in folder: String, name: String,
                                           keepingLedgers: Bool) -> [(path: String, ledger: ShardLedger)] {
        let prefix = ".\(name).partial-"
        guard let siblings = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var kept: [(path: String, ledger: ShardLedger)] = []
        for sibling in siblings.sorted() where sibling.hasPrefix(prefix) {
            var rest = String(sibling.dropFirst(prefix.count))
            if rest.hasSuffix(".old") { rest.removeLast(4) }
            guard let pid = Int32(rest), pid > 0, pid != getpid() else { continue }
            guard processEnded(pid) else { continue }
            let full = (folder as NSString).appendingPathComponent(sibling)
            let ledgerPath = (full as NSString).appendingPathComponent(ledgerName)
            let ledger = ShardLedger.load(ledgerPath)
            if let ledger, keepingLedgers, !sibling.hasSuffix(".old") {
                kept.append((full, ledger))
                continue
            }
            if ledger != nil { unlink(ledgerPath) }
            // A ledger the ended run was writing (killed before its first rename) is ours as well.
            unlink(ledgerPath + ".tmp")
            guard foreignEntry(in: full) == nil else { continue }
            try? FileManager.default.removeItem(atPath: full)
        }
        return kept
    }

    // MARK: Paths

    /// Creates the directory `folder` (the output directory's parent, or the output directory itself for a
    /// partitioned run) and its missing ancestors; returns it with symlinks resolved. Errors name `destination`, the
    /// output directory as the user gave it (absolute), with the component that is a file or the system's reason.
    static func makeDirectories(_ folder: String, for destination: String) throws(ExecutionError) -> String {
        var missing: [String] = []
        var path = folder
        while !exists(path) && !isSymlink(path) {
            missing.append((path as NSString).lastPathComponent)
            let up = (path as NSString).deletingLastPathComponent
            if up == path || up.isEmpty { break }
            path = up
        }
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
            if path == destination { throw .io(path: destination, "exists and is not a directory") }
            throw .io(path: destination, "cannot create the output directory: \(path) is a file, not a directory")
        }
        if isSymlink(path), !exists(path) {
            throw .io(path: destination, "cannot create the output directory: \(path) is a dangling symlink")
        }
        var current = realPath(path) ?? path
        for component in missing.reversed() {
            current = (current as NSString).appendingPathComponent(component)
            if mkdir(current, 0o777) != 0, errno != EEXIST {
                let reason = String(cString: strerror(errno))
                if current == destination { throw .io(path: destination, "cannot create the output directory: \(reason)") }
                throw .io(path: destination, "cannot create the output directory: cannot create \(current): \(reason)")
            }
        }
        return realPath(current) ?? current
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func isSymlink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }

    /// The underlying POSIX reason of a Foundation file error, rather than "NSCocoaErrorDomain error 512".
    static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return ns.localizedDescription
    }
}
