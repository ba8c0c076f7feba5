import ArgumentParser
import Backstop
import Foundation

struct DiffCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what changed between two snapshots, from manifests and entry lists only.",
        discussion: """
        Example (two mysql-dump snapshots: the databases that changed):
          backstop diff 1a2b 3c4d

        Filesystem snapshots: entries added (+), removed (-) and changed (~, with what changed).
        Logical snapshots: databases or tables whose content digest changed. No payload is decoded.

        Exit codes: 0 compared (with or without differences); 66 no such snapshot; 64 different kinds.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @Argument(help: "The older snapshot.") var from: String
    @Argument(help: "The newer snapshot.") var to: String

    func run(_ output: Output) throws {
        let repo = try repository.open(output)
        let diff = try SnapshotDiff.compute(repo, from: repo.resolve(from), to: repo.resolve(to))
        if output.json { output.printJSON(diff); return }
        var lines: [String] = []
        for a in diff.added { lines.append("+ \(a)") }
        for r in diff.removed { lines.append("- \(r)") }
        for c in diff.changed { lines.append("~ \(c.path) (\(c.what.joined(separator: ", ")))") }
        let noun = diff.kind == .logical ? "sections" : "entries"
        lines.append("\(diff.added.count) added, \(diff.removed.count) removed, \(diff.changed.count) changed, \(diff.unchanged) unchanged \(noun)")
        output.line(lines.joined(separator: "\n"))
    }
}
