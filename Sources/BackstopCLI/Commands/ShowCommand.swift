import ArgumentParser
import Backstop
import Foundation

struct ShowCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one snapshot's manifest, and with --entries its entry list.",
        discussion: """
        SNAPSHOT is a whole ID or a unique prefix of it or of its 8 hex characters; or choose one
        with the selection flags (backstop show --before upgrade --source mysql-dump).
        Entry names are shown escaped, one per line: a byte that is not UTF-8 as \\xNN (bad\\xff),
        a backslash as \\\\, control characters as \\n, \\t or \\xNN; --json gives the exact bytes
        (pathBytes, base64) of every name that is not UTF-8.
        Example: backstop show 1a2b --entries

        Exit codes: 0 shown; 66 no such snapshot (or an ambiguous prefix); 65 its files are unreadable.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @OptionGroup var selection: SelectionOptions

    @Argument(help: "The snapshot (or choose it with --at, --before or --latest).")
    var snapshot: String?

    func validate() throws {
        try selection.validateSelection()
        if (snapshot == nil) == !selection.isGiven { throw ValidationError("give a SNAPSHOT or selection flags (--at, --before, --latest), one of them") }
    }

    @Flag(help: "List the entries of a filesystem snapshot.")
    var entries = false

    func run(_ output: Output) throws {
        let repo = try repository.open(output)
        let id = try selection.resolve(snapshot, in: repo)
        let manifest = try repo.manifest(id)
        let list = entries && manifest.kind == .filesystem ? try SnapshotReader(repository: repo, manifest: manifest).entries() : nil
        if output.json {
            if let list {
                output.printJSON(ShowReport(manifest: manifest, entries: list))
            } else {
                output.printJSON(manifest)
            }
            return
        }
        var lines: [String] = [
            "snapshot    \(manifest.id)",
            "kind        \(manifest.kind.rawValue)\(manifest.dumpFormat.map { " (\($0.rawValue))" } ?? "")",
            "source      \(manifest.source)",
            "host        \(manifest.host)",
            "tags        \(manifest.tags.isEmpty ? "-" : manifest.tags.joined(separator: ", "))",
            "started     \(Timestamp.format(manifest.startedAt))",
            "completed   \(Timestamp.format(manifest.completedAt))",
            "size        \(Output.bytes(manifest.bytesIn)) in, \(Output.bytes(manifest.bytesStored)) stored, \(Output.bytes(manifest.bytesNew ?? 0)) new",
            "frames      \(manifest.frameCount ?? 0) (\(manifest.framesNew ?? 0) new)",
            "sha256      \(manifest.isSealed ? "(encrypted)" : manifest.sha256?.hex ?? "- (format 2: frames.tsv and each frame's ID cover the stream)")",
        ]
        if manifest.isSealed {
            lines.append("sealed      \(manifest.kind == .logical ? "dump format, sections (database and table names), binlog position" : "paths, base backup positions"), warnings' text, stream digest: encrypted; give --identity FILE (or $BACKSTOP_IDENTITY) to see them")
        }
        if let run = manifest.runID { lines.append("run         \(run)") }
        if let position = manifest.binlogPosition { lines.append("binlog      \(position)") }
        if let pg = manifest.postgresBackup {
            lines.append("pg start    \(pg.startLSN ?? "?") (WAL file \(pg.startWALFile ?? "?")), timeline \(pg.startTimeline.map(String.init) ?? "?")")
            lines.append("pg checkpt  \(pg.checkpointLSN ?? "?")")
            lines.append("pg stop     \(pg.stopLSN ?? "unknown (the stream has no backup_manifest)")")
            lines.append("pg label    \(pg.label ?? "")  (started \(pg.startTime ?? "?"))")
        }
        if let mb = manifest.physicalBackup {
            lines.append("physical    \(mb.tool) \(mb.toolVersion ?? "?"), server \(mb.serverVersion ?? "?")")
            if let uuid = mb.galeraUUID { lines.append("galera      \(uuid):\(mb.galeraSeqno.map(String.init) ?? "?")") }
            if mb.needsPrepare {
                lines.append("prepare     needed: a server starts on this copy only after `backstop restore \(manifest.id.suffix) --to DIR --prepare` (mariadb-backup --prepare)")
            }
        }
        if !manifest.paths.isEmpty { lines.append("paths       \(manifest.paths.joined(separator: ", "))") }
        if manifest.kind == .filesystem { lines.append("entries     \(manifest.entryCount)") }
        for f in manifest.files { lines.append("file        \(f.name)  \(Output.bytes(f.size))  \(f.sha256)") }
        if !manifest.sections.isEmpty {
            lines.append("sections")
            lines.append(Output.table(["  NAME", "KIND", "OFFSET", "LENGTH", "SHA256"], manifest.sections.map {
                ["  " + $0.name, $0.kind.rawValue, "\($0.offset)", "\($0.length)", $0.sha256.hex]
            }))
        }
        lines.append("warnings    \(manifest.warningTotal)")
        for w in manifest.warnings { lines.append("  \(w)") }
        if let list {
            lines.append("")
            lines.append(Output.table(["MODE", "UID", "GID", "SIZE", "MTIME (UTC)", "PATH"], list.map { e in
                [String(e.mode, radix: 8), "\(e.uid)", "\(e.gid)", "\(e.size)",
                 Timestamp.formatSeconds(Date(timeIntervalSince1970: Double(e.modificationTime.seconds))),
                 e.escapedPath + (e.type == .directory ? "/" : "")
                    + (e.escapedLinkTarget.map { e.type == .hardlink ? " => \($0)" : " -> \($0)" } ?? "")]
            }))
        }
        output.line(lines.joined(separator: "\n"))
    }
}

struct ShowReport: JSONReport {
    var manifest: Manifest
    var entries: [EntryRecord]
}
