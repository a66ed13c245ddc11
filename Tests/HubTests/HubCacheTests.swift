import Foundation
@testable import Hub
import XCTest

/// The cache layout huggingface_hub reads, the digests blobs are checked against, and the API's paging.
final class HubCacheTests: XCTestCase {
    func testLayoutRefsAndRelativeLinks() throws {
        let root = NSTemporaryDirectory() + "hub-cache-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = HubCache(root: root)
        let commit = String(repeating: "ab", count: 20)
        XCTAssertEqual(HubCache.folderName(repo: "org/name"), "models--org--name")
        XCTAssertEqual(HubCache.folderName(repo: "gpt2"), "models--gpt2")
        XCTAssertNil(cache.commit("org/name", revision: "main"))
        XCTAssertEqual(cache.commit("org/name", revision: commit), commit, "a commit hash names itself")
        try cache.setRef("org/name", revision: "main", commit: commit)
        XCTAssertEqual(try String(contentsOfFile: "\(root)/models--org--name/refs/main", encoding: .utf8), commit)
        XCTAssertEqual(cache.commit("org/name", revision: "main"), commit)
        try cache.setRef("org/name", revision: "refs/pr/1", commit: commit)
        XCTAssertEqual(cache.commit("org/name", revision: "refs/pr/1"), commit)

        try FileManager.default.createDirectory(atPath: "\(root)/models--org--name/blobs", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: cache.blob("org/name", etag: "e1")))
        try cache.link("org/name", commit: commit, file: "config.json", etag: "e1")
        try cache.link("org/name", commit: commit, file: "sub/dir/f.json", etag: "e1")
        let snapshot = cache.snapshot("org/name", commit: commit)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "\(snapshot)/config.json"), "../../blobs/e1")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "\(snapshot)/sub/dir/f.json"),
                       "../../../../blobs/e1")
        XCTAssertEqual(cache.files("org/name", commit: commit), ["config.json", "sub/dir/f.json"])
        XCTAssertEqual(cache.lock("org/name", etag: "e1"), "\(root)/.locks/models--org--name/e1.lock")
    }

    func testDigestsAreGitBlobIDsAndLFSSHA256() {
        let data = Data("hello\n".utf8)
        var git = BlobDigest(size: data.count, lfsSHA256: nil, gitOID: "ce013625030ba8dba906f756967f9e9ca394464a")
        git.update(data)
        XCTAssertTrue(git.matches, git.hex())  // `git hash-object` of "hello\n"
        var lfs = BlobDigest(size: data.count, lfsSHA256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
                             gitOID: "unused")
        lfs.update(data)
        XCTAssertTrue(lfs.matches, lfs.hex())
        lfs.update(Data("!".utf8))
        XCTAssertFalse(lfs.matches)
    }

    func testPagingAndEncoding() {
        XCTAssertEqual(HubClient.nextPage(#"<https://hub/api/models/a/b/tree/c?cursor=x>; rel="next""#),
                       "https://hub/api/models/a/b/tree/c?cursor=x")
        XCTAssertNil(HubClient.nextPage(#"<https://hub/x>; rel="prev""#))
        XCTAssertEqual(HubClient.encode("refs/pr/1", keepingSlashes: false), "refs%2Fpr%2F1")
        XCTAssertEqual(HubClient.resolvePath("org/name", "c0", "sub dir/f.json"), "/org/name/resolve/c0/sub%20dir/f.json")
    }
}
