import Foundation

/// Where a model's side files (index, config, tokenizer files, card) are written: the staging directory of an
/// ordinary run (`OutputDirectory`) or, for `finalize`, the shared output directory itself (`FinalizedFolder`).
protocol ModelFolder {
    /// The output directory as the user sees it (for names derived from it).
    var destination: String { get }
    /// The full path of `name`, relative to the output directory.
    func path(_ name: String) -> String
    /// Writes `text` to `name`.
    /// - Throws: `ExecutionError.io` naming the file.
    func write(_ name: String, _ text: String) throws(ExecutionError)
    /// Copies the file `source` to `name`.
    /// - Throws: `ExecutionError.io` naming the file.
    func copy(from source: String, name: String) throws(ExecutionError)
}

extension OutputDirectory: ModelFolder {}

/// A finished partitioned output being finalized: files are written in place, each through a temporary name and a
/// rename, so a rerun of `finalize` replaces what an interrupted one left.
struct FinalizedFolder: ModelFolder {
    let destination: String

    func path(_ name: String) -> String { (destination as NSString).appendingPathComponent(name) }

    func write(_ name: String, _ text: String) throws(ExecutionError) {
        let target = path(name), temporary = target + ".tmp"
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        } catch {
            throw .io(path: target, "cannot write: \(OutputDirectory.reason(error))")
        }
        guard rename(temporary, target) == 0 else {
            throw .io(path: target, "cannot write: \(String(cString: strerror(errno)))")
        }
    }

    func copy(from source: String, name: String) throws(ExecutionError) {
        guard let data = FileManager.default.contents(atPath: source) else {
            throw .io(path: source, "cannot read for copying")
        }
        let target = path(name), temporary = target + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data), rename(temporary, target) == 0 else {
            throw .io(path: target, "cannot write: \(String(cString: strerror(errno)))")
        }
    }
}
