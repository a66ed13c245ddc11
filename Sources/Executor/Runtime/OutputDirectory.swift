import Foundation

/// Writes a model into a hidden sibling of the destination and moves it into place only when complete,
/// so a failed run never leaves a directory that looks like a finished model.
final class OutputDirectory {
    let destination: String
    let staging: String

    init(destination: String, overwrite: Bool) throws(ExecutionError) {
        let url = URL(fileURLWithPath: destination).standardizedFileURL
        self.destination = url.path
        let fm = FileManager.default
        if let contents = try? fm.contentsOfDirectory(atPath: url.path), !contents.isEmpty, !overwrite {
            throw .outputExists(path: url.path)
        }
        if fm.fileExists(atPath: url.path), (try? fm.contentsOfDirectory(atPath: url.path)) == nil {
            throw .io(path: url.path, "exists and is not a directory")
        }
        let parent = url.deletingLastPathComponent().path
        staging = (parent as NSString).appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())")
        do {
            try? fm.removeItem(atPath: staging)
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        } catch {
            throw .io(path: staging, "cannot create: \(error.localizedDescription)")
        }
    }

    func path(_ name: String) -> String { (staging as NSString).appendingPathComponent(name) }

    /// Creates the folder that will hold `name` (a path relative to the output directory).
    func makeDirectory(for name: String) throws(ExecutionError) {
        let folder = (path(name) as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw .io(path: folder, "cannot create: \(error.localizedDescription)")
        }
    }

    func write(_ name: String, _ text: String) throws(ExecutionError) {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)))
        } catch {
            throw .io(path: path(name), "cannot write: \(error.localizedDescription)")
        }
    }

    func copy(from source: String, name: String) throws(ExecutionError) {
        do {
            try FileManager.default.copyItem(atPath: source, toPath: path(name))
        } catch {
            throw .io(path: source, "cannot copy: \(error.localizedDescription)")
        }
    }

    /// Moves the finished model into place (replacing an existing destination).
    func commit() throws(ExecutionError) {
        let fm = FileManager.default
        do {
            if fm.fileExists(atPath: destination) { try fm.removeItem(atPath: destination) }
            try fm.moveItem(atPath: staging, toPath: destination)
        } catch {
            throw .io(path: destination, "cannot move the finished model into place: \(error.localizedDescription)")
        }
    }

    /// Removes the partial output after a failure.
    func discard() {
        try? FileManager.default.removeItem(atPath: staging)
    }
}
