import Crypto
import Foundation

/// The digest a Hub blob is named by, computed over its bytes as they arrive: SHA-256 for LFS files (the ETag the
/// Hub gives them), else the git blob id, SHA-1 of `blob SIZE\0` and the contents.
struct BlobDigest {
    private var sha256: SHA256?
    private var sha1: Insecure.SHA1?
    /// The hex digest the bytes must have.
    let expected: String

    /// A digest for a file of `size` bytes with LFS SHA-256 `lfsSHA256`, else git blob id `gitOID`.
    init(size: Int, lfsSHA256: String?, gitOID: String) {
        if let lfsSHA256 {
            sha256 = SHA256()
            expected = lfsSHA256.lowercased()
        } else {
            var sha1 = Insecure.SHA1()
            sha1.update(data: Data("blob \(size)\0".utf8))
            self.sha1 = sha1
            expected = gitOID.lowercased()
        }
    }

    mutating func update(_ data: Data) {
        if sha256 != nil { sha256!.update(data: data) } else { sha1!.update(data: data) }
    }

    /// The hex digest of the bytes so far.
    func hex() -> String {
        let bytes: [UInt8] = sha256.map { Array($0.finalize()) } ?? Array(sha1!.finalize())
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Whether the bytes so far are the expected ones.
    var matches: Bool { hex() == expected }

    /// Feeds the first `count` bytes of the file at `path` (all when nil).
    /// - Throws: when the file cannot be read.
    mutating func update(fileAt path: String, count: Int? = nil) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { try? handle.close() }
        var left = count ?? Int.max
        while left > 0 {
            let chunk = try handle.read(upToCount: min(left, 1 << 22)) ?? Data()
            if chunk.isEmpty { break }
            update(chunk)
            left -= chunk.count
        }
    }
}
