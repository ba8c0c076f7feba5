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
    /// Progress on stderr: stderr is a terminal (or `--progress`), and not `--quiet`.
    let progress: Bool
    /// `--json --progress`: progress as JSON status lines on stderr instead of a redrawn line.
    let progressJSON: Bool
    /// Log lines (errors, warnings, `run --verbose`) start with a UTC timestamp: stderr is not a
    /// terminal, so they go to a log file or cron mail.
    let timestamps: Bool
    let stdout: Writer
    let stderr: Writer

    init(json: Bool = false, quiet: Bool = false, showProgress: Bool = false, stderrIsTerminal: Bool = isatty(2) == 1,
         environment: [String: String] = ProcessInfo.processInfo.environment,
         stdout: Writer = .standardOutput, stderr: Writer = .standardError) {
        self.json = json
        self.quiet = quiet
        color = stderrIsTerminal && environment["NO_COLOR"] == nil
        progress = (stderrIsTerminal || showProgress) && !quiet
        progressJSON = json && showProgress
        timestamps = !stderrIsTerminal
        self.stdout = stdout
        self.stderr = stderr
    }

    init(_ options: OutputOptions) {
        self.init(json: options.json, quiet: options.quiet, showProgress: options.progress)
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
        log("error", text, color: "31")
    }

    func warning(_ text: String) {
        log("warning", text, color: "33")
    }

    /// The one log line format (see `OutputLogHandler`): `[TIMESTAMP ]backstop: LEVEL: text`.
    func log(_ level: String, _ text: String, color code: String? = nil) {
        var label = "backstop: \(level):"
        if color, let code { label = "\u{1B}[\(code)m\(label)\u{1B}[0m" }
        if progress && !progressJSON { ProgressMeter.clearActive() }
        let time = timestamps ? Timestamp.formatSeconds(Date()) + " " : ""
        stderr.write(time + label + " " + text + "\n")
    }

    /// Prints `report` as one JSON document with its `schemaVersion` (see `JSONDocument`).
    func printJSON<T: JSONReport>(_ report: T) {
        let data = (try? Timestamp.jsonEncoder().encode(JSONDocument(body: report))) ?? Data("{}".utf8)
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

    /// `n` and the noun, singular for 1: "1 entry", "2 entries", "0 frames".
    static func count(_ n: some BinaryInteger, _ singular: String, _ plural: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
    }

    /// A plain text table: columns padded to their widest cell, measured in terminal columns
    /// (`width(_:)`), so names in CJK scripts or with combining marks keep the columns aligned.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(width)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], width(cell)) }
        }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - width(c))
            }.joined(separator: "  ")
        }
        return ([render(header)] + rows.map(render)).joined(separator: "\n")
    }
}

extension Output {
    /// The columns `text` takes on a terminal: per character (grapheme cluster) 2 for East Asian
    /// wide and fullwidth characters and emoji, 0 for a cluster of only combining marks or
    /// format characters (zero-width space, joiners), else 1; combining marks after a base add 0.
    static func width(_ text: String) -> Int {
        text.reduce(0) { $0 + width(of: $1) }
    }

    static func width(of character: Character) -> Int {
        guard let first = character.unicodeScalars.first else { return 0 }
        switch first.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format, .control: return 0
        default: break
        }
        if first.properties.isEmojiPresentation || character.unicodeScalars.contains("\u{FE0F}") { return 2 }
        let v = first.value
        let wide: [ClosedRange<UInt32>] = [
            0x1100...0x115F, 0x231A...0x231B, 0x2329...0x232A, 0x2E80...0x303E, 0x3041...0x33FF,
            0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF, 0xA960...0xA97F, 0xAC00...0xD7A3,
            0xF900...0xFAFF, 0xFE10...0xFE19, 0xFE30...0xFE6F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
            0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x2FFFD, 0x30000...0x3FFFD,
        ]
        return wide.contains { $0.contains(v) } ? 2 : 1
    }
}
