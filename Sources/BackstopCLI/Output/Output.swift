import Backstop
import Foundation

/// How one command prints: reports on stdout, diagnostics on stderr. Made once from the parsed
/// `--json`/`--quiet` flags and the terminal (see `ReportingCommand`), then passed to the
/// command's work; nothing about it is global.
struct Output: Sendable {
    /// Where text goes. Standard output goes through C stdio (as `print`), so reports stay in
    /// the order they were made and a closed pipe never crashes the process.
    struct Writer: Sendable {
        let write: @Sendable (String) -> Void

        static let standardOutput = Writer { print($0, terminator: "") }
        static let standardError = Writer { FileHandle.standardError.write(Data($0.utf8)) }
    }

    /// `--json`: the report is one JSON document on stdout.
    let json: Bool
    /// `--quiet`: nothing but errors and warnings (a JSON report is still printed).
    let quiet: Bool
    /// Colour in errors and warnings: stderr is a terminal and `NO_COLOR` is not set.
    let color: Bool
    /// Progress lines on stderr: stderr is a terminal and not `--quiet`.
    let progress: Bool
    let stdout: Writer
    let stderr: Writer

    init(json: Bool = false, quiet: Bool = false, stderrIsTerminal: Bool = isatty(2) == 1,
         environment: [String: String] = ProcessInfo.processInfo.environment,
         stdout: Writer = .standardOutput, stderr: Writer = .standardError) {
        self.json = json
        self.quiet = quiet
        color = stderrIsTerminal && environment["NO_COLOR"] == nil
        progress = stderrIsTerminal && !quiet
        self.stdout = stdout
        self.stderr = stderr
    }

    init(_ options: OutputOptions) {
        self.init(json: options.json, quiet: options.quiet)
    }

    /// A line of the human-readable report (nothing with --quiet).
    func line(_ text: String) {
        if !quiet || json { stdout.write(text + "\n") }
    }

    /// A line on stdout whatever --quiet says: the one result a script reads (an ID), or a failure.
    func result(_ text: String) {
        stdout.write(text + "\n")
    }

    /// A line on stderr as it is (no prefix): explanations and summaries beside a report.
    func note(_ text: String) {
        stderr.write(text + "\n")
    }

    func error(_ text: String) {
        let prefix = color ? "\u{1B}[31mbackstop: error:\u{1B}[0m " : "backstop: error: "
        stderr.write(prefix + text + "\n")
    }

    func warning(_ text: String) {
        let prefix = color ? "\u{1B}[33mbackstop: warning:\u{1B}[0m " : "backstop: warning: "
        stderr.write(prefix + text + "\n")
    }

    func printJSON<T: Encodable>(_ value: T) {
        let data = (try? Timestamp.jsonEncoder().encode(value)) ?? Data("{}".utf8)
        stdout.write(String(decoding: data, as: UTF8.self) + "\n")
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
    private let output: Output

    init(_ output: Output) { self.output = output }

    func update(bytes: Int64, entries: Int) {
        guard output.progress else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.25 else { return }
        last = now
        let rate = Double(bytes) / max(now.timeIntervalSince(start), 0.001)
        output.stderr.write("\r\(Output.bytes(bytes)) read, \(Output.bytes(Int64(rate)))/s, \(entries) entries   ")
    }

    func done() {
        if output.progress && last != Date.distantPast { output.stderr.write("\r\u{1B}[K") }
    }
}
