import Backstop
import Foundation

/// Everything the CLI prints goes through here: reports on stdout, diagnostics on stderr.
enum Output {
    nonisolated(unsafe) static var json = false
    nonisolated(unsafe) static var quiet = false

    static var stderrIsTerminal: Bool { isatty(2) == 1 }
    static var color: Bool { stderrIsTerminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

    static func line(_ text: String) {
        if !quiet || json { print(text) }
    }

    static func error(_ text: String) {
        let prefix = color ? "\u{1B}[31mbackstop: error:\u{1B}[0m " : "backstop: error: "
        FileHandle.standardError.write(Data((prefix + text + "\n").utf8))
    }

    static func warning(_ text: String) {
        let prefix = color ? "\u{1B}[33mbackstop: warning:\u{1B}[0m " : "backstop: warning: "
        FileHandle.standardError.write(Data((prefix + text + "\n").utf8))
    }

    static func printJSON<T: Encodable>(_ value: T) {
        let data = (try? Timestamp.jsonEncoder().encode(value)) ?? Data("{}".utf8)
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// A plain text table: columns padded to their widest cell.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([render(header)] + rows.map(render)).joined(separator: "\n")
    }
}

/// Progress on stderr, only when stderr is a terminal: bytes, rate, entries.
final class ProgressLine {
    private let start = Date()
    private var last = Date.distantPast
    private let enabled: Bool

    init() { enabled = Output.stderrIsTerminal && !Output.quiet }

    func update(bytes: Int64, entries: Int) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.25 else { return }
        last = now
        let rate = Double(bytes) / max(now.timeIntervalSince(start), 0.001)
        let text = "\r\(Output.bytes(bytes)) read, \(Output.bytes(Int64(rate)))/s, \(entries) entries   "
        FileHandle.standardError.write(Data(text.utf8))
    }

    func done() {
        if enabled && last != Date.distantPast { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
