/// Where a model reference that is not a local directory comes from — a Hugging Face Hub repo id: a local snapshot
/// directory, and the files it still lacks, fetched when asked. `LocalCheckpointCatalog` asks it; the planner sees
/// only directories and `CheckpointInfo`, never where the files come from.
public protocol ModelResolver: Sendable {
    /// Whether `reference` has the form of a name this resolver serves (a repo id such as `org/name`), so that a
    /// missing directory is looked up remotely only when it could be one.
    func accepts(_ reference: String) -> Bool

    /// Resolves `reference` at `revision` (a branch, tag or commit; nil: the default branch) to a fixed snapshot:
    /// its commit's file list and local directory. Touches no file of the model.
    /// - Throws: `CheckpointError.remote` naming the reference and what to do: no such repository, a gated or
    ///   private one without access, no such revision, an unreachable service, or offline with nothing cached.
    func resolve(_ reference: String, revision: String?) throws(CheckpointError) -> any ResolvedSnapshot

    /// Downloads the `files` of each snapshot that are not local yet into its directory, several at a time, each
    /// verified before it is linked in.
    /// - Throws: `CheckpointError.remote` naming the reference and file that could not be fetched.
    func fetch(_ requests: [(snapshot: any ResolvedSnapshot, files: [String])]) throws(CheckpointError)
}

/// One model at one commit: its files (relative paths, `/`-separated), the local directory they are linked into,
/// and their bytes, from the directory when present, else from the remote service by byte range.
public protocol ResolvedSnapshot: AnyObject, Sendable {
    /// The reference as written (`org/name` or `org/name@revision`), for messages.
    var reference: String { get }
    /// The local snapshot directory (absolute); files appear in it as they are fetched.
    var directory: String { get }
    /// Every file of the model at this commit.
    var files: [String] { get }
    /// Whether `file` is complete in `directory`.
    func isLocal(_ file: String) -> Bool
    /// The size in bytes of `file`, if known.
    func size(of file: String) -> Int?
    /// Copies bytes `offset ..< offset + count` of `file` into `buffer`: from the local file when present, else by
    /// an HTTP Range request (nothing else of the file is downloaded).
    /// - Throws: `CheckpointError.remote` or the local file's read errors, naming the file.
    func read(_ file: String, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer) throws(CheckpointError)
}
