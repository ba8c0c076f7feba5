import ArgumentParser
import Backstop
import Foundation

struct RestoreCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a snapshot (whole, some files, or one database) safely, verifying as it goes.",
        discussion: """
        Examples:
          backstop restore --before upgrade --source mysql-datadir --to /srv/restored
          backstop restore 1a2b --to /tmp/r --include 'mysql-snapshot/app1/*'
          backstop restore --before upgrade --source sql --database app1 --to app1.sql
          backstop restore --latest --source pg --table public.orders --to - | psql x
          backstop restore --source sql --database app7 --until 01:59 --to - | mariadb
          backstop restore --before upgrade --source db1-physical --to /srv/db1 \\
              --prepare
          backstop restore 1a2b --database app7 --until 01:59 --to - | mariadb

        --prepare (hot physical backups, backup --mariabackup): after the restore, runs
        mariadb-backup --prepare --target-dir DIR, so a server starts on DIR; for a Galera
        backup it writes DIR/grastate.dat (the recorded UUID and seqno, safe_to_bootstrap: 1)
        so the node can bootstrap a new cluster. Refused before DIR is touched: a snapshot that
        is not such a backup (64), an installed mariadb-backup of another major.minor version
        than the server's, or none (69). Without --prepare, the last line says how to prepare.

        --until T (point-in-time): the newest dump of --source completed before T (taken with
        mariadb-dump --master-data=2), or the SNAPSHOT given, then the binlog events archived by `backstop logs` from the
        dump's position up to T (events stamped before T's second; of --database only, which needs
        binlog_format=ROW), one stream for the mariadb client. --explain names the dump, the
        segments and the positions. A gap in the archived binlogs between the dump and T stops the
        restore (65) and names the gap and the latest moment that can be reached. For a hot
        physical backup (backup --mariabackup) only the events are written, from its recorded
        position: its data comes back with restore --prepare.

        Filesystem snapshots go to a directory: it must be new or empty (--force moves an existing
        one aside to DIR.before-restore-TIME; nothing is deleted). Extraction happens in a staging
        folder beside it, renamed into place only when every entry's digest matched. Entries with
        '..', absolute paths, writes through symlinks, escaping hard links, hard links to anything
        but a file, and a path declared twice are refused (65); names are restored as their exact
        bytes. The repository is untrusted input: as root, owners, modes (setuid included) and
        device nodes are restored as recorded; --no-same-owner and --no-same-permissions restrict
        that as in GNU tar.
        Logical snapshots go to a file or '-' (stdout); to '-', every byte is verified before the
        first one is written. A FIFO, device or socket target is refused; --force moves an
        existing file or symlink aside too. Flags that do not fit the snapshot's kind (--database
        or --table or --to - for a filesystem snapshot, --include for a logical one) are refused.

        When the chosen snapshot proves corrupt, restore stops (65) and the target is unchanged;
        with --fallback it says so and tries the next older candidate of the same source and kind.

        Exit codes: 0 restored; 69 mariadb-backup missing or of another version (--prepare);
        1 mariadb-backup --prepare failed (the unprepared copy stays in DIR); 65 corrupt or hostile data, or a gap in the log chain; 66 nothing matched the selection (or
        no such database/table/entry); 73 target not empty; 74 the target cannot be written
        (broken pipe, disk full, permission): staging removed, target unchanged, nothing recorded
        against the snapshot; 64 usage.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var selection: SelectionOptions

    @Argument(help: "A snapshot ID or unique prefix (instead of selection flags).")
    var snapshot: String?

    @Option(help: ArgumentHelp("Target directory, file, or - for stdout.", valueName: "path"), completion: .file())
    var to: String

    @Option(name: .customLong("include"), help: "Restore only entries matching this glob (repeatable).")
    var includes: [String] = []

    @Option(help: "Logical snapshots: restore one database (mysqldump, pg_dumpall).")
    var database: String?

    @Option(help: "Logical snapshots: restore one table (pg_dump, plain, custom or tar format; schema.table or table).")
    var table: String?

    @Flag(help: "Restore over a non-empty target (an existing directory is moved aside, not deleted).")
    var force = false

    @Flag(help: "Filesystem snapshots: do not restore owners (as GNU tar; owners are restored only when running as root).")
    var noSameOwner = false

    @Flag(help: "Filesystem snapshots: drop setuid, setgid and sticky bits and apply the umask (as GNU tar; by default modes are exact).")
    var noSamePermissions = false

    @Flag(help: "If the chosen snapshot is corrupt, try the next older candidate.")
    var fallback = false

    @Flag(help: "Hot physical backups: run mariadb-backup --prepare on the restored copy (and write grastate.dat for a Galera backup).")
    var prepare = false

    @Flag(help: "Explain the selection on stderr.")
    var explain = false

    @Option(name: .customLong("run"), help: ArgumentHelp("Restore every snapshot of one `backstop run` into --to DIR: DIR/SOURCE/ for filesystem snapshots, DIR/SOURCE.sql for logical ones.", valueName: "run-id"))
    var runID: String?

    @Option(help: ArgumentHelp("Point-in-time: the newest dump of --source before this time, brought forward to it with the archived binlogs.", valueName: "time"))
    var until: String?

    @Option(help: ArgumentHelp("With --until: the log source whose segments are replayed (default mysql-binlog for dumps, pg-wal for base backups).", valueName: "name"))
    var logSource: String?

    func validate() throws {
        if prepare {
            if until != nil { throw ValidationError("--prepare and --until are two steps: restore SNAPSHOT --to DIR --prepare, then restore SNAPSHOT --database D --until T --to - for the events after it") }
            if runID != nil { throw ValidationError("--prepare takes one snapshot; --run restores a set") }
            if database != nil || table != nil || !includes.isEmpty { throw ValidationError("--prepare restores a whole physical backup; --database, --table and --include do not apply") }
            if to == "-" { throw ValidationError("--prepare restores a data directory: --to DIR, not --to -") }
        }
        if until != nil {
            if selection.isGiven || runID != nil {
                throw ValidationError("--until chooses the dump itself (the newest before T), or takes a SNAPSHOT: drop --at, --before, --latest and --run")
            }
            if selection.source == nil && snapshot == nil { throw ValidationError("--until needs --source (the dumps' source, e.g. --source mysql-dump) or a SNAPSHOT") }
            if table != nil || !includes.isEmpty { throw ValidationError("--until restores a whole dump, one --database, or a base backup; --table and --include do not apply") }
            if to.isEmpty { throw ValidationError("--to needs a path") }
            return
        }
        try selection.validateSelection()
        let ways = (snapshot == nil ? 0 : 1) + (selection.isGiven ? 1 : 0) + (runID == nil ? 0 : 1)
        if ways > 1 { throw ValidationError("give a SNAPSHOT, selection flags or --run, not more than one") }
        if ways == 0 { throw ValidationError("give a SNAPSHOT, --at TIME, --before TIME|EVENT, --latest, --until TIME or --run ID") }
        if runID != nil && (!includes.isEmpty || database != nil || table != nil) { throw ValidationError("--run restores whole snapshots; --include, --database and --table take one snapshot") }
        if database != nil && table != nil { throw ValidationError("--database and --table exclude each other") }
        if !includes.isEmpty && (database != nil || table != nil) { throw ValidationError("--include is for filesystem snapshots; --database and --table for logical ones") }
        if to.isEmpty { throw ValidationError("--to needs a path") }
        _ = try runToRestore()
        if runID != nil && to == "-" { throw ValidationError("--run restores a set of snapshots into a directory: --to DIR, not --to -") }
        if (noSameOwner || noSamePermissions) && (database != nil || table != nil) {
            throw ValidationError("--no-same-owner and --no-same-permissions are for filesystem snapshots; --database and --table for logical ones")
        }
    }

    func run(_ output: Output) throws {
        MallocTuning.forFrameReading()
        let repo = try repository.open(output)
        try repo.requireIdentity(for: "a restore")
        if let until {
            try restoreUntil(try TimeParser.fromEnvironment().parse(until), repo, output)
            return
        }
        if let run = try runToRestore() {
            try restoreRun(run, repo, output)
            return
        }
        var candidates: [SnapshotID]
        if let snapshot {
            candidates = [try repo.resolve(snapshot)]
        } else {
            let result = try repo.selection(selection.criteria(repo))
            if explain { output.note(result.explanation) }
            guard let chosen = result.chosen else { throw explain ? SelectionError.noMatchExplained(result) : SelectionError.noMatch(result) }
            candidates = [chosen.id] + result.fallbacks.map(\.id)
            notice(output, "selected \(chosen.id) (\(chosen.source), completed \(Timestamp.format(chosen.completedAt)))")
        }
        // --prepare: refused before the target is touched.
        if prepare { try MariaBackupPrepare.check(try repo.manifest(candidates[0])) }
        let request = RestoreRequest(target: to, includes: includes, database: database, table: table, force: force,
                                     noSameOwner: noSameOwner, noSamePermissions: noSamePermissions)
        let meter = ProgressMeter(output, action: "restore")
        let report = try repo.restore(candidates: candidates, request: request, fallback: fallback,
                                      progress: { meter.update(done: $0, total: $1, current: $2) }) { meter.finish(); notice(output, $0) }
        meter.finish()
        if output.json && to != "-" {
            output.printJSON(report)
        } else {
            notice(output, "restored \(report.snapshot) to \(report.target): \(database != nil || table != nil ? Output.count(report.entries, "section") : Output.count(report.entries, "entry", "entries")), "
                + "\(Output.bytes(report.bytesWritten)); read \(report.framesRead) of \(report.framesTotal) frames (\(Output.bytes(report.bytesRead)))"
                + (report.movedAside.map { "; the previous contents are in \($0)" } ?? ""))
        }
        for w in report.warnings { output.warning(w) }
        guard let physical = try repo.manifest(report.snapshot).physicalBackup, physical.needsPrepare, to != "-" else { return }
        if prepare {
            if report.snapshot != candidates[0] { try MariaBackupPrepare.check(try repo.manifest(report.snapshot)) }
            try MariaBackupPrepare.prepare(directory: report.target, backup: physical)
            notice(output, "prepared \(report.target) with mariadb-backup --prepare: a server (of MariaDB \(physical.serverVersion ?? "?")) starts on it"
                + (physical.grastate != nil ? "; grastate.dat written (uuid \(physical.galeraUUID ?? "?"), seqno \(physical.galeraSeqno.map(String.init) ?? "?"), safe_to_bootstrap: 1): bootstrap a new cluster from this node" : ""))
        } else if includes.isEmpty {
            notice(output, "\(report.target) is an unprepared hot backup: prepare it before a server starts on it, with "
                + "mariadb-backup --prepare --target-dir \(Repository.shellQuoted(report.target)) (or restore with --prepare)")
        }
    }

    /// `--until T`: the newest snapshot of --source before T. A dump (logical) is followed by the
    /// binlog from its position up to T; a base backup (filesystem) is restored with the
    /// recovery settings that make PostgreSQL replay archived WAL up to T.
    func restoreUntil(_ until: Date, _ repo: Repository, _ output: Output) throws {
        let chosenID: SnapshotID
        if let snapshot {
            chosenID = try repo.resolve(snapshot)
        } else {
            let criteria = try SelectionOptions.criteria(for: selection, point: .before(until, event: nil))
            let result = try repo.selection(criteria)
            if explain { output.note(result.explanation) }
            guard let chosen = result.chosen else { throw explain ? SelectionError.noMatchExplained(result) : SelectionError.noMatch(result) }
            chosenID = chosen.id
        }
        let chosen = try repo.manifest(chosenID)
        if chosen.physicalBackup != nil {
            try restorePhysicalUntil(until, chosen, repo, output)
            return
        }
        if chosen.kind == .filesystem {
            try restoreBaseBackupUntil(until, chosen.id, repo, output)
            return
        }
        let manifest = try repo.manifest(chosen.id)
        let plan = try repo.planBinlogReplay(snapshot: manifest, logSource: logSource ?? "mysql-binlog", until: until)
        if explain { output.note(plan.explanation) }
        for w in plan.warnings { output.warning(w) }
        let report = try repo.restoreUntil(plan, database: database, to: to, force: force)
        if output.json && to != "-" {
            output.printJSON(report)
        } else {
            notice(output, "restored \(chosen.id)\(database.map { " (database \($0))" } ?? "") and \(Output.bytes(report.replayBytes)) of binlog events from \(plan.position) up to \(Timestamp.format(until)) to \(to == "-" ? "standard output" : to)")
        }
    }

    /// A hot physical backup (mariadb-backup): the binlog events from its recorded position up
    /// to T, alone; its data comes from `restore --prepare`.
    func restorePhysicalUntil(_ until: Date, _ manifest: Manifest, _ repo: Repository, _ output: Output) throws {
        if until < manifest.completedAt {
            throw ValidationError("--until \(Timestamp.format(until)) is before snapshot \(manifest.id) completed (\(Timestamp.format(manifest.completedAt))): choose an older snapshot")
        }
        let plan = try repo.planBinlogReplay(snapshot: manifest, logSource: logSource ?? "mysql-binlog", until: until)
        if explain {
            output.note("snapshot \(manifest.id) is a hot physical backup (mariadb-backup): its data comes back with `backstop restore \(manifest.id.suffix) --to DIR --prepare`; "
                + "what follows is only the binlog events after it, for the server started on that copy")
            output.note(plan.explanation)
        }
        for w in plan.warnings { output.warning(w) }
        let report = try repo.restoreUntil(plan, database: database, to: to, force: force)
        if output.json && to != "-" {
            output.printJSON(report)
        } else {
            notice(output, "wrote \(Output.bytes(report.replayBytes)) of binlog events\(database.map { " of database \($0)" } ?? "") from \(plan.position) (snapshot \(manifest.id)) up to \(Timestamp.format(until)) to \(to == "-" ? "standard output" : to): apply them to the server started on the prepared copy")
        }
    }

    /// PostgreSQL: the base backup, then `restore_command` (this binary's `logs get`) and
    /// `recovery_target_time` in its `postgresql.auto.conf`, and `recovery.signal`.
    func restoreBaseBackupUntil(_ until: Date, _ id: SnapshotID, _ repo: Repository, _ output: Output) throws {
        if database != nil || to == "-" {
            throw ValidationError("--until with a filesystem snapshot (a PostgreSQL base backup) restores a data directory: --to DIR, without --database")
        }
        let request = RestoreRequest(target: to, force: force, noSameOwner: noSameOwner, noSamePermissions: noSamePermissions)
        let report = try repo.restore(candidates: [id], request: request, fallback: false) { notice(output, $0) }
        let dataDirectory = try PostgresRecovery.dataDirectory(in: report.target)
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let repoPath = URL(fileURLWithPath: try repository.path()).standardizedFileURL.path
        let source = logSource ?? "pg-wal"
        let command = [binary, "logs", "get", "--repo", repoPath, "--source", source].map(Repository.shellQuoted).joined(separator: " ") + " %f %p"
        try PostgresRecovery.write(dataDirectory: dataDirectory, restoreCommand: command, until: until)
        if explain { output.note("recovery settings in \(dataDirectory)/postgresql.auto.conf: restore_command = '\(command)', recovery_target_time = \(Timestamp.format(until)); recovery.signal created") }
        if output.json { output.printJSON(report) }
        notice(output, "restored \(id) to \(dataDirectory) with recovery up to \(Timestamp.format(until)) from logs/\(source)/: start PostgreSQL on it (its owner and mode 0700 as usual) and it replays the archived WAL, then promotes")
    }

    /// `--run`'s run ID, if given.
    func runToRestore() throws -> RunID? {
        guard let runID else { return nil }
        guard let id = RunID(runID) else {
            throw ValidationError("--run \(runID) is not a run ID (such as 20240324T220000Z-1a2b3c4d); `backstop list` shows each snapshot's run ID in its RUN column")
        }
        return id
    }

    /// Restores the set of snapshots one run took, each verified, into one directory.
    func restoreRun(_ runID: RunID, _ repo: Repository, _ output: Output) throws {
        let reports = try repo.restore(run: runID, into: to, force: force, noSameOwner: noSameOwner,
                                       noSamePermissions: noSamePermissions) { notice(output, $0) }
        if output.json { output.printJSON(RunRestoreReport(runID: runID.rawValue, restores: reports)) }
    }

    /// Messages go to stderr: stdout may carry the restored stream.
    func notice(_ output: Output, _ text: String) {
        if !output.quiet { output.note("backstop: " + text) }
    }

    /// The library's notices: a failure and a fallback are shown even with --quiet.
    func notice(_ output: Output, _ n: RestoreNotice) {
        if !output.quiet || n.isImportant { output.note("backstop: " + n.description) }
    }
}

/// `restore --run ID --json`: one report per snapshot of the run.
struct RunRestoreReport: JSONReport {
    var runID: String
    var restores: [RestoreReport]
}
