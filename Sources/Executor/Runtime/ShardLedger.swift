import Crypto
import Foundation
import IR

/// The record, kept on disk beside the shards being written, of the output shards a run has finished: each shard's
/// file name (relative to the output directory), size in bytes and SHA-256, under the fingerprint of the plan that
/// wrote them (`PlanFingerprint`). A shard is recorded only after its file is complete and `fsync`ed, and the ledger
/// is replaced atomically (written beside, synced, renamed), so after a crash or `kill -9` every recorded shard is
/// on disk as recorded. `--resume` and `finalize` trust a shard only if its file still has the recorded size and
/// hash.
///
/// JSON: `{"format": "mergegraph-shards/1", "plan": HEX, "partition": "I/N" or null, "shards": {FILE: {"bytes": N,
/// "sha256": HEX}}}`.
public struct ShardLedger: Codable, Sendable, Equatable {
    /// One finished shard.
    public struct Entry: Codable, Sendable, Equatable {
        public var bytes: Int
        public var sha256: String

        public init(bytes: Int, sha256: String) {
            self.bytes = bytes
            self.sha256 = sha256
        }
    }

    /// The format tag this version writes and reads.
    public static let currentFormat = "mergegraph-shards/1"

    public var format: String
    /// The plan's fingerprint (hex SHA-256).
    public var plan: String
    /// The partition that wrote the shards (`I/N`), nil for an ordinary run.
    public var partition: String?
    /// Finished shards by file name.
    public var shards: [String: Entry]

    public init(plan: String, partition: String? = nil, shards: [String: Entry] = [:]) {
        format = Self.currentFormat
        self.plan = plan
        self.partition = partition
        self.shards = shards
    }

    /// The ledger at `path`, nil when there is none or it is not a ledger of this format (a ledger torn by a crash
    /// cannot exist: it is replaced by rename).
    public static func load(_ path: String) -> ShardLedger? {
        guard let data = FileManager.default.contents(atPath: path),
              let ledger = try? JSONDecoder().decode(ShardLedger.self, from: data),
              ledger.format == currentFormat else { return nil }
        return ledger
    }

    /// Replaces the ledger at `path` atomically: written to `path.tmp`, synced, renamed over `path`, and the
    /// folder synced.
    /// - Throws: `ExecutionError.io` naming the file.
    public func save(_ path: String) throws(ExecutionError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { throw .io(path: path, "cannot encode the shard ledger") }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: temporary, "cannot create: \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .io(path: path, "cannot write the shard ledger: \(reason)")
        }
        Self.syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// Flushes the file at `path` to disk.
    /// - Throws: `ExecutionError.io` naming the file.
    public static func sync(file path: String) throws(ExecutionError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .io(path: path, "cannot sync to disk: \(String(cString: strerror(errno)))") }
    }

    /// Flushes a folder's entries (a rename into it) to disk; failures are ignored (some file systems refuse it).
    public static func syncDirectory(_ path: String) {
        let fd = open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// The size in bytes and hex SHA-256 of the file at `path`, read in 8 MiB blocks.
    /// - Throws: `ExecutionError.io` naming the file, also when it is not a regular file: it is opened without
    ///   blocking, so that a named pipe in a shard's place is refused at once instead of waiting for a writer.
    public static func digest(of path: String) throws(ExecutionError) -> Entry {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .io(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .io(path: path, "cannot read: \(String(cString: strerror(errno)))") }
        switch status.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw .io(path: path, "cannot read: \(String(cString: strerror(EISDIR)))")
        default: throw .io(path: path, "cannot read: not a regular file (a named pipe, socket or device)")
        }
        var hasher = SHA256()
        let block = 8 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: block, alignment: 64)
        defer { buffer.deallocate() }
        var total = 0
        while true {
            let count = read(fd, buffer.baseAddress, block)
            if count < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, "cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            total += count
        }
        return Entry(bytes: total, sha256: PlanFingerprint.hex(hasher.finalize()))
    }
}

/// What determines the bytes of a plan's shards, hashed: the mergegraph version and the config text (both in the
/// shards' metadata), every node (op, attributes, operands, type), every output
/// (name, value, folder), every shard (file, outputs), and each input model's weight and `.json` files (name, size,
/// modification time, inode and change time). The inode and change time (ctime, which no program can set back) tell a
/// file replaced by another of the same size and modification time (`cp -p`, `rsync -a`, `touch -r`) from the one the
/// shards were computed from. The device number is left out: it is not the same on two machines mounting one shared
/// filesystem (NFS gives each client its own), and partitions and `finalize` on different machines must agree. Chunk
/// sizes, thread counts and the memory budget are left out: the bytes do not depend on them (a budget that changes what
/// is computed, such as PyTorch's tie order given up, changes the nodes).
public enum PlanFingerprint {
    /// The hex SHA-256 fingerprint of `plan`.
    public static func of(_ plan: Plan) -> String {
        var text = "mergegraph-plan/1 \(MergegraphVersion.string)\n"
        // The config text goes into every shard's metadata.
        text += "config \(configSHA256(plan))\n"
        let graph = plan.graph
        for (i, model) in graph.models.enumerated() {
            text += "@m\(i) \(model.path)\n"
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: model.path)) ?? []).sorted()
            for name in names where name.hasSuffix(".safetensors") || name.hasSuffix(".bin") || name.hasSuffix(".json") {
                var info = stat()
                guard stat((model.path as NSString).appendingPathComponent(name), &info) == 0 else { continue }
                text += "  \(name) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) inode \(info.st_ino) "
                    + "ctime \(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)\n"
            }
        }
        for id in graph.values {
            let node = graph[id]
            text += "\(id) = \(node.op.mnemonic)\(node.op.attributes) "
            if case .load(let model, let tensor) = node.op {
                text += "@m\(model) \"\(tensor)\""
            } else {
                text += node.operands.map(\.description).joined(separator: ", ")
            }
            text += " : \(node.type)\n"
        }
        for output in graph.outputs { text += "out \"\(output.name)\" = \(output.value) in \"\(output.directory)\"\n" }
        for shard in plan.schedule.shards {
            text += "shard \(shard.fileName) \(shard.byteCount) \(shard.outputs.map(String.init).joined(separator: ","))\n"
        }
        return hex(SHA256.hash(data: Data(text.utf8)))
    }

    /// The hex SHA-256 of `plan`'s config text (recorded in every shard's metadata).
    public static func configSHA256(_ plan: Plan) -> String { hex(SHA256.hash(data: Data(plan.configText.utf8))) }

    /// Lower-case hex of a digest.
    static func hex(_ digest: SHA256.Digest) -> String { digest.map { String(format: "%02x", $0) }.joined() }
}
