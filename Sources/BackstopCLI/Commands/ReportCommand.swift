import ArgumentParser
import Backstop
import Foundation

struct ReportCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a timeline of the snapshots as one self-contained HTML page.",
        discussion: """
        Example:
          backstop report --html timeline.html --policy /etc/backstop/nightly.yaml

        Per source: snapshots on a timeline coloured by their last verification (passed,
        failed, never), events as vertical lines, the snapshot --before EVENT picks ringed,
        sizes over time (logical, stored, new), and with --policy the retention plan's keep
        and remove marks as prune would decide now. The page has no external assets.

        Exit codes: 0 written; 64 bad flag or policy; 66 no such source; 74 cannot write FILE.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @Option(help: ArgumentHelp("The HTML file to write.", valueName: "file"), completion: .file(extensions: ["html"]))
    var html: String

    @Option(name: .customLong("source"), help: "Only this source (repeatable; default: every source).", completion: Completions.sources)
    var sources: [String] = []

    @Option(help: ArgumentHelp("Only snapshots and events from this time on.", valueName: "time"))
    var since: String?

    @Option(help: "Show this policy's retention plan (keep/remove) for its repository.", completion: Completions.policies)
    var policy: String?

    func run(_ output: Output) throws {
        let p = try policy.map { try PolicyParser.load(file: $0) }
        let repo = try repository.open(output, policy: p, command: "report")
        let from = try since.map { try TimeParser.fromEnvironment().parse($0) }
        let known = Set(try repo.snapshots().map(\.source))
        for s in sources where !known.contains(s) {
            throw ReportError.noSuchSource(s, known: known.sorted())
        }
        let retention = p.flatMap { policy in policy.retention.map { ($0, policy.timeZone) } }
        let report = try repo.timelineReport(sources: sources, since: from, retention: retention)
        let page = TimelineHTML.render(report)
        guard FileManager.default.createFile(atPath: html, contents: Data(page.utf8)) else {
            throw ReportError.write(path: html, reason: String(cString: strerror(errno)))
        }
        if output.json {
            output.printJSON(ReportSummary(file: html, sources: report.sources.map(\.name),
                                           snapshots: report.sources.reduce(0) { $0 + $1.snapshots.count }, events: report.events.count))
        } else {
            output.line("wrote \(html): \(Output.count(report.sources.count, "source")), "
                + "\(Output.count(report.sources.reduce(0) { $0 + $1.snapshots.count }, "snapshot")), \(Output.count(report.events.count, "event"))")
        }
    }
}

/// `report --json`: what the page shows.
struct ReportSummary: JSONReport {
    var file: String
    var sources: [String]
    var snapshots: Int
    var events: Int
}

enum ReportError: Error, CustomStringConvertible, ExitStatusProviding {
    case noSuchSource(String, known: [String])
    case write(path: String, reason: String)

    var description: String {
        switch self {
        case let .noSuchSource(s, known):
            return "--source \(s): the repository has no snapshot of that source; its sources: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
        case let .write(path, reason):
            return "cannot write the report \(path): \(reason); choose a writable path for --html"
        }
    }

    var exitStatus: ExitStatus {
        switch self {
        case .noSuchSource: return .noMatch
        case .write: return .ioError
        }
    }
}
