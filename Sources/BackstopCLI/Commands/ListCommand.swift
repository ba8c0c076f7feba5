import ArgumentParser
import Backstop
import Foundation

struct ListCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the snapshots in a repository, oldest first.",
        discussion: """
        Example: backstop list --source mysql-dump --json

        Exit codes: 0 listed (even when empty); 1 not a repository; 74 I/O error.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @Option(help: "Only snapshots of this source.", completion: Completions.sources)
    var source: String?

    @Option(help: "Only snapshots of this kind (filesystem or logical).", completion: Completions.kinds)
    var kind: String?

    func run(_ output: Output) throws {
        let repo = try repository.open(output)
        var snapshots = try repo.snapshots()
        if let source { snapshots = snapshots.filter { $0.source == source } }
        if let kind {
            guard let k = SnapshotKind(rawValue: kind) else { throw ValidationError("--kind must be filesystem or logical") }
            snapshots = snapshots.filter { $0.kind == k }
        }
        let verifications = try repo.lastVerifications()
        if output.json {
            output.printJSON(SnapshotList(snapshots: snapshots.map { SnapshotSummary($0, verifications[$0.id]) }))
            return
        }
        let rows = snapshots.map { s in
            [s.id.rawValue, s.kind.rawValue, s.source, Timestamp.formatSeconds(s.completedAt),
             Output.bytes(s.bytesIn), Output.bytes(s.bytesStored), s.bytesNew.map { Output.bytes($0) } ?? "-", s.warningCount > 0 ? "\(s.warningCount)" : "-",
             verifications[s.id].map { "\($0.passed ? "ok" : "FAILED") \($0.mode.rawValue) \(Timestamp.formatSeconds($0.at))" } ?? "never",
             s.runID ?? "-", s.tags.joined(separator: ",")]
        }
        output.line(Output.table(["ID", "KIND", "SOURCE", "COMPLETED (UTC)", "SIZE", "STORED", "NEW", "WARNINGS", "LAST VERIFIED", "RUN", "TAGS"], rows))
        output.line(Output.count(snapshots.count, "snapshot"))
    }
}

/// `list --json`: `{"schemaVersion": 1, "snapshots": [...]}`.
struct SnapshotList: JSONReport {
    var snapshots: [SnapshotSummary]
}

/// A snapshot as `list --json` prints it.
struct SnapshotSummary: Encodable {
    var id: String
    var kind: String
    var source: String
    var host: String
    var tags: [String]
    var runID: String?
    var startedAt: Date
    var completedAt: Date
    var bytesIn: Int64
    var bytesStored: Int64
    /// Compressed bytes of the frames the snapshot added to the repository.
    var bytesNew: Int64?
    var entryCount: Int
    var warningCount: Int
    var lastVerification: LastVerification?

    struct LastVerification: Encodable {
        var at: Date
        var mode: String
        var passed: Bool
        var firstProblem: String?
    }

    init(_ s: CatalogSnapshot, _ v: VerificationRecord?) {
        lastVerification = v.map { LastVerification(at: $0.at, mode: $0.mode.rawValue, passed: $0.passed, firstProblem: $0.firstProblem) }
        id = s.id.rawValue
        kind = s.kind.rawValue
        source = s.source
        host = s.host
        tags = s.tags
        runID = s.runID
        startedAt = s.startedAt
        completedAt = s.completedAt
        bytesIn = s.bytesIn
        bytesStored = s.bytesStored
        bytesNew = s.bytesNew
        entryCount = s.entryCount
        warningCount = s.warningCount
    }
}
