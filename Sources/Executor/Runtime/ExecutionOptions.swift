/// How the executor runs a plan.
public struct ExecutionOptions: Sendable {
    public var threads: Int
    public var copyTokenizer: Bool
    /// Replace a non-empty output directory.
    public var overwrite: Bool
    /// Called after each shard is complete (file name, tensors in it).
    public var onShardDone: (@Sendable (String, Int) -> Void)?

    public init(threads: Int, copyTokenizer: Bool = true, overwrite: Bool = false,
                onShardDone: (@Sendable (String, Int) -> Void)? = nil) {
        self.threads = threads
        self.copyTokenizer = copyTokenizer
        self.overwrite = overwrite
        self.onShardDone = onShardDone
    }
}
