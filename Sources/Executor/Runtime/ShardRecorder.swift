import Dispatch
import Foundation
import Synchronization

/// Records finished shards in a `ShardLedger` on a background queue, so that syncing and hashing a shard overlaps
/// the computation of the next: each shard is synced to disk, hashed (unless its writer's `ShardDigest` hashed it
/// already), optionally published (a partitioned run
/// renames it into the shared directory), then added to the ledger, which is saved. The first failure is kept and
/// thrown by `finish`; later shards are not recorded after one. A run that fails calls `abandon` (or `finish`) before
/// it cleans up, so that no recording writes into a folder being removed.
final class ShardRecorder: Sendable {
    private let queue = DispatchQueue(label: "mergegraph.shard-recorder")
    private let state: Mutex<(ledger: ShardLedger, failure: ExecutionError?, abandoned: Bool)>
    private let ledgerPath: String

    /// A recorder adding to `ledger`, saved at `ledgerPath`.
    init(ledger: ShardLedger, ledgerPath: String) {
        state = Mutex((ledger, nil, false))
        self.ledgerPath = ledgerPath
    }

    /// Queues the recording of shard `name` (relative to the output directory), whose finished file is at `path`
    /// and whose size and hash are `digest` when known (`ShardDigest.entry`; read from the file otherwise);
    /// `publish` (if any) runs after the file is synced and before it is recorded.
    func record(_ name: String, at path: String, digest: ShardLedger.Entry? = nil,
                publish: (@Sendable () throws(ExecutionError) -> Void)? = nil) {
        queue.async { [self] in
            guard state.withLock({ $0.failure == nil && !$0.abandoned }) else { return }
            do throws(ExecutionError) {
                try ShardLedger.sync(file: path)
                let entry: ShardLedger.Entry
                if let digest { entry = digest } else { entry = try ShardLedger.digest(of: path) }
                try publish?()
                let ledger = state.withLock { state -> ShardLedger in
                    state.ledger.shards[name] = entry
                    return state.ledger
                }
                try ledger.save(ledgerPath)
            } catch {
                state.withLock { $0.failure = $0.failure ?? error }
            }
        }
    }

    /// Waits for every queued recording; throws the first failure.
    func finish() throws(ExecutionError) {
        queue.sync {}
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }

    /// Drops the recordings not yet started and waits for the one in progress, after which nothing writes into the
    /// output folder or the ledger any more: a failed run calls it before removing its partial output.
    func abandon() {
        state.withLock { $0.abandoned = true }
        queue.sync {}
    }
}
