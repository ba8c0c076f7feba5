import ArgumentParser
import Backstop

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Maintain the catalog (the SQLite index).",
        subcommands: [Rebuild.self])

    struct Rebuild: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recreate catalog.sqlite from the snapshot manifests alone.",
            discussion: """
            The catalog is only an index; the manifests are the truth. Run this if catalog.sqlite is lost or damaged.
            Example: backstop catalog rebuild --repo /var/backups/backstop

            Exit codes: 0 rebuilt; 1 not a repository; 75 lock held; 74 I/O error.
            """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions
        @OptionGroup var lock: LockOptions

        func run(_ output: Output) throws {
            // Found as every command finds its repository (--repo, $BACKSTOP_REPO), but not opened:
            // opening reads the catalog this replaces, which may be the damaged part.
            let storage = try repository.storage()
            let report = try Repository.withWriterLock(storage: storage, command: "backstop catalog rebuild", timeout: try lock.seconds(), warn: output.warning) {
                try Repository.rebuildCatalog(storage: storage)
            }
            for u in report.unreadable { output.warning("snapshots/\(u.id) left out: \(u.reason)") }
            if output.json {
                output.printJSON(CatalogRebuildReport(snapshots: report.added.map(\.rawValue), unreadable: report.unreadable.map(\.id)))
            } else {
                output.line("catalog rebuilt: \(Output.count(report.added.count, "snapshot"))")
            }
        }
    }
}

/// `catalog rebuild --json`: the snapshots cataloged, and those left out (unreadable).
struct CatalogRebuildReport: JSONReport {
    var snapshots: [String]
    var unreadable: [String]
}
