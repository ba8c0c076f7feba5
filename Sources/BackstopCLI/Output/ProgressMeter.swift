import Backstop
import Foundation

/// Progress of one long step on stderr: elapsed time, done of total, percentage, rate, ETA and
/// the current file or snapshot, redrawn in place at most 4 times a second, and only when
/// stderr is a terminal (or `--progress` asks for it) and not `--quiet`. With `--json`, each
/// redraw is instead one JSON status line (restic's `--json` status model), so stdout keeps
/// its one report. `backup`, `restore`, `verify`, `prune` and `run` use it; so may `copy`.
final class ProgressMeter: @unchecked Sendable {
    /// What `done` and `total` count: bytes (shown as MiB, with a rate) or items (snapshots).
    enum Unit: String { case bytes, items }

    private let output: Output
    private let action: String
    private let unit: Unit
    private let start = Date()
    private var last = Date.distantPast
    private var drawn = false
    private let lock = NSLock()

    init(_ output: Output, action: String, unit: Unit = .bytes) {
        self.output = output
        self.action = action
        self.unit = unit
    }

    /// The meter that drew last: a log line clears its line first (`Output.log`), so a warning
    /// never lands after a half-drawn progress line; the next update draws it again.
    nonisolated(unsafe) private static weak var active: ProgressMeter?
    private static let activeLock = NSLock()

    static func clearActive() {
        activeLock.lock()
        let meter = active
        activeLock.unlock()
        meter?.finish()
    }

    /// Reports `done` of `total` (nil: unknown), working on `current`; drawn when a quarter of a
    /// second has passed since the last drawing (the first update is drawn at once).
    func update(done: Int64, total: Int64?, current: String? = nil) {
        guard output.progress else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.25 else { return }
        last = now
        draw(done: done, total: total, current: current, now: now)
    }

    /// Ends the meter: the line is cleared (JSON: a last status line is not needed, the report follows).
    func finish() {
        guard output.progress else { return }
        lock.lock()
        defer { lock.unlock() }
        if drawn && !output.progressJSON { output.stderr.write("\r\u{1B}[K") }
        drawn = false
    }

    private func draw(done: Int64, total: Int64?, current: String?, now: Date) {
        let elapsed = now.timeIntervalSince(start)
        // Half a second of history at least before a rate (and an ETA) means anything.
        let rate = elapsed >= 0.5 ? Double(done) / elapsed : 0
        // A total can be an estimate (a backup's parent): never past 100 %, never a negative ETA.
        let fraction = total.flatMap { $0 > 0 ? min(1, Double(done) / Double($0)) : nil }
        let eta = total.flatMap { t -> Double? in rate > 0 ? max(0, Double(t - done)) / rate : nil }
        if output.progressJSON {
            let status = ProgressStatus(action: action, unit: unit.rawValue, secondsElapsed: (elapsed * 1000).rounded() / 1000,
                                        done: done, total: total, percentDone: fraction.map { ($0 * 1000).rounded() / 10 },
                                        rate: rate.rounded(), secondsRemaining: eta.map { $0.rounded() }, current: current)
            let data = (try? Timestamp.jsonEncoder(pretty: false).encode(JSONDocument(body: status))) ?? Data()
            output.stderr.write(String(decoding: data, as: UTF8.self) + "\n")
            drawn = true
            return
        }
        var parts = ["[\(Self.clock(elapsed))]", action]
        if let fraction { parts.append(String(format: "%.1f%%", fraction * 100)) }
        switch unit {
        case .bytes:
            parts.append(total.map { "\(Output.bytes(done)) / \(Output.bytes($0))" } ?? Output.bytes(done))
            if rate > 0 { parts.append("\(Output.bytes(Int64(rate)))/s") }
        case .items:
            parts.append(total.map { "\(done) / \($0)" } ?? "\(done)")
        }
        if let eta { parts.append("ETA \(Self.clock(eta))") }
        var line = parts.joined(separator: "  ")
        if let current, !current.isEmpty { line += "  " + current }
        line = Self.fit(line, columns: Self.columns())
        output.stderr.write("\r\u{1B}[K" + line)
        drawn = true
        Self.activeLock.lock()
        Self.active = self
        Self.activeLock.unlock()
    }

    /// `m:ss`, or `h:mm:ss` from an hour on.
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.down))
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    /// The line cut to the terminal's width (display columns), with "…" where it was cut, so a
    /// redraw never wraps onto a second line that `\r` cannot reach.
    static func fit(_ line: String, columns: Int) -> String {
        guard Output.width(line) >= columns else { return line }
        var out = ""
        var width = 0
        for c in line {
            let w = Output.width(of: c)
            if width + w > columns - 2 { break }
            out.append(c)
            width += w
        }
        return out + "…"
    }

    /// `$COLUMNS`, else the terminal's width, else 80.
    static func columns() -> Int {
        if let c = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), c > 10 { return c }
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 10 { return Int(size.ws_col) }
        return 80
    }
}

/// One `--json --progress` status line on stderr.
struct ProgressStatus: JSONReport {
    var messageType = "status"
    var action: String
    var unit: String
    var secondsElapsed: Double
    var done: Int64
    var total: Int64?
    var percentDone: Double?
    var rate: Double
    var secondsRemaining: Double?
    var current: String?
}
