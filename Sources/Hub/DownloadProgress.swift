/// How far the downloads of one `HuggingFaceHub.fetch` have come: files and bytes done of their totals (bytes
/// resumed from an earlier run count as done from the start).
public struct DownloadProgress: Sendable {
    public var fileCount: Int
    public var filesDone: Int
    public var byteCount: Int
    public var bytesDone: Int
    /// Bytes fetched over the network by this run so far (the rate is computed from these).
    public var bytesFetched: Int

    public init(fileCount: Int, filesDone: Int = 0, byteCount: Int, bytesDone: Int = 0, bytesFetched: Int = 0) {
        self.fileCount = fileCount
        self.filesDone = filesDone
        self.byteCount = byteCount
        self.bytesDone = bytesDone
        self.bytesFetched = bytesFetched
    }
}
