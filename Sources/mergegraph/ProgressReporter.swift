import Executor
import Foundation
import Hub
import IR
import Synchronization

/// Shows a run's progress on standard error: a redrawn bar on a terminal, a plain line every few seconds
/// otherwise (logs, CI), nothing when quiet.
final class ProgressReporter: Sendable {
    /// How progress is shown.
    enum Style {
        case bar
        case lines
        case silent
    }

    private let style: Style
    private let start = Date()
    private let last = Mutex<(shown: Date, text: String)>((.distantPast, ""))

    init(quiet: Bool) {
        style = quiet ? .silent : (isatty(STDERR_FILENO) != 0 ? .bar : .lines)
    }

    /// Reports `progress`, at most 10 times a second on a terminal and every 10 seconds otherwise.
    func update(_ progress: RunProgress) {
        guard style != .silent else { return }
        show(done: progress.tensorsDone == progress.tensorCount) { line(progress, elapsed: $0) }
    }

    /// Reports Hub downloads, like a run's progress.
    func update(_ progress: DownloadProgress) {
        guard style != .silent else { return }
        show(done: progress.filesDone == progress.fileCount) { line(progress, elapsed: $0) }
    }

    /// Shows the line `text(elapsed)` when it is due (always when `done`).
    private func show(done: Bool, _ text: (TimeInterval) -> String) {
        let now = Date()
        let interval: TimeInterval = style == .bar ? 0.1 : 10
        let due = last.withLock { state -> Bool in
            guard done || now.timeIntervalSince(state.shown) >= interval else { return false }
            state.shown = now
            return true
        }
        guard due else { return }
        let text = text(now.timeIntervalSince(start))
        if style == .bar {
            Console.write("\r\u{1B}[K" + text + (done ? "\n" : ""))
        } else if last.withLock({ state in
            defer { state.text = text }
            return state.text != text
        }) {
            Console.error(text)
        }
    }

    /// Clears an unfinished bar before other output (an error or a shard message).
    func interrupt() {
        if style == .bar { Console.write("\r\u{1B}[K") }
    }

    func line(_ p: RunProgress, elapsed: TimeInterval) -> String {
        let fraction = p.byteCount > 0 ? Double(p.bytesWritten) / Double(p.byteCount) : 1
        let bar = self.bar(fraction)
        let rate = elapsed > 0 ? Double(p.bytesWritten) / elapsed : 0
        let eta = rate > 0 ? Double(p.byteCount - p.bytesWritten) / rate : 0
        return String(format: "%@%3.0f%%  %d/%d tensors  %@ / %@  %@/s  ETA %@", bar, fraction * 100,
                      p.tensorsDone, p.tensorCount, formatBytes(p.bytesWritten), formatBytes(p.byteCount),
                      formatBytes(Int(rate)), clock(eta))
    }

    func line(_ p: DownloadProgress, elapsed: TimeInterval) -> String {
        let fraction = p.byteCount > 0 ? Double(max(0, p.bytesDone)) / Double(p.byteCount) : 1
        let bar = self.bar(fraction)
        let rate = elapsed > 0 ? Double(p.bytesFetched) / elapsed : 0
        let eta = rate > 0 ? Double(max(0, p.byteCount - p.bytesDone)) / rate : 0
        return String(format: "downloading %@%3.0f%%  %d/%d files  %@ / %@  %@/s  ETA %@", bar, fraction * 100,
                      p.filesDone, p.fileCount, formatBytes(max(0, p.bytesDone)), formatBytes(p.byteCount),
                      formatBytes(Int(rate)), clock(eta))
    }

    /// `[####    ] ` for `fraction` (0...1) where the line is redrawn; nothing in a log (standard error not a
    /// terminal), which gets the plain figures.
    private func bar(_ fraction: Double) -> String {
        guard style == .bar else { return "" }
        let width = 24
        let filled = min(width, max(0, Int((fraction * Double(width)).rounded(.down))))
        return "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] "
    }

    private func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}
