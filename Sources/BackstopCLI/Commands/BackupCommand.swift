import ArgumentParser
import Backstop
import Foundation

struct BackupCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take a filesystem snapshot of PATHs, or a logical snapshot of a stream.",
        discussion: """
        Filesystem:
          backstop backup /mnt/mysql-snapshot --source mysql-datadir --exclude '*.pid'
        Each PATH is stored under its base name (mysql-snapshot/...).

        Filesystem, from a tar stream (entries stored under their own names):
          backstop backup --tar-command 'pg_basebackup -D - -Ft -X none' \\
              --source pg-base
          tar -C /srv/data -cf - . | backstop backup --tar-stdin --source data
        Unsafe entries (absolute path, `..`, duplicate, link leaving the tree,
        device file) are refused (65), naming the entry. pg_basebackup's
        backup_label positions go into the manifest (`backstop show`).

        Hot physical (mariadb-backup, the server keeps running):
          backstop backup --mariabackup --socket /run/mysqld/mysqld.sock \\
              --source db1-physical
        Binlog position, GTID and Galera state go into the manifest; the copy
        needs `restore --prepare` before a server starts on it.

        Logical:
          mariadb-dump --all-databases | backstop backup --stdin --source mysql-dump
          backstop backup --command 'pg_dumpall' --source pg-cluster
        A dump without its completion marker is refused unless --format raw. An empty stream is
        refused in every format, and --format auto refuses a stream of another format than the
        source's newest logical snapshot (a failing dump) unless --format names it.
        --format applies to logical snapshots only, --exclude to filesystem ones (64 otherwise).

        The snapshot's ID is printed on stdout.

        Files cache: a file whose path, size, mtime, ctime, inode and device match the source's
        previous snapshot from this host (and whose times are not within 2 s of its start) is not
        read: its frames are reused. --files-cache=off reads every file (still storing only new
        frames).

        Exit codes: 0 taken; 3 taken with warnings (files skipped or changed while read);
        64 usage; 65 stream refused (empty, truncated, no completion marker, format
        changed, an unsafe tar entry); 66 a PATH is missing;
        1 the dump command (or mariadb-backup) failed (nothing stored) or no repository; 74 I/O error; 75 lock held.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var lock: LockOptions

    @Argument(help: "Directories or files to snapshot.", completion: .file())
    var paths: [String] = []

    @Option(help: "The source name the snapshot is filed under, e.g. mysql-datadir.", completion: Completions.sources)
    var source: String

    @Option(name: .customLong("tag"), help: "A tag (repeatable).")
    var tags: [String] = []

    @Option(name: .customLong("exclude"), help: "A glob of paths to leave out (repeatable); without '/', it matches base names.")
    var excludes: [String] = []

    @Option(help: "Record the snapshot as taken at this time (RFC 3339, local date-time, date, or @unix).")
    var time: String?

    @Option(name: .customLong("files-cache"), help: "on (default): reuse unchanged files' frames from the source's previous snapshot without reading them; off: read every file.")
    var filesCache: String?

    @Flag(help: "Take a logical snapshot of standard input.")
    var stdin = false

    @Option(help: "Take a logical snapshot of this command's output (run by /bin/sh -c).")
    var command: String?

    @Flag(name: .customLong("tar-stdin"), help: "Take a filesystem snapshot of the tar stream on standard input.")
    var tarStdin = false

    @Option(name: .customLong("tar-command"), help: "Take a filesystem snapshot of the tar stream this command writes (run by /bin/sh -c), e.g. 'pg_basebackup -D - -Ft -X none'.")
    var tarCommand: String?

    @Flag(help: "Take a hot physical backup of a running MariaDB server with mariadb-backup --backup.")
    var mariabackup = false

    @Option(help: ArgumentHelp("--mariabackup: the server's socket.", valueName: "path"), completion: .file())
    var socket: String?

    @Option(help: "--mariabackup: the server's host (with --port).")
    var host: String?

    @Option(help: "--mariabackup: the server's TCP port.")
    var port: Int?

    @Option(help: "--mariabackup: the user (RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR).")
    var user: String?

    @Option(name: .customLong("defaults-file"), help: ArgumentHelp("--mariabackup: an option file (e.g. with the password), read first.", valueName: "path"), completion: .file())
    var defaultsFile: String?

    /// The connection flags given, for messages.
    var connectionFlags: [String] {
        [socket.map { _ in "--socket" }, host.map { _ in "--host" }, port.map { _ in "--port" }, user.map { _ in "--user" },
         defaultsFile.map { _ in "--defaults-file" }].compactMap { $0 }
    }

    /// The tar input's flag, for messages.
    var tarFlag: String? { tarStdin ? "--tar-stdin" : tarCommand != nil ? "--tar-command" : nil }

    @Option(help: "Stream format: auto (default), mysqldump, pgdump, pgdump-custom (pg_dump -Fc), pgdump-tar (pg_dump -Ft), pgdumpall or raw.",
            completion: Completions.formats)
    var format: String?

    func validate() throws {
        let inputs = (paths.isEmpty ? 0 : 1) + (stdin ? 1 : 0) + (command == nil ? 0 : 1) + (tarStdin ? 1 : 0) + (tarCommand == nil ? 0 : 1) + (mariabackup ? 1 : 0)
        if inputs == 0 { throw ValidationError("give PATHs to snapshot, --stdin, --command CMD, --tar-stdin, --tar-command CMD or --mariabackup") }
        if inputs > 1 { throw ValidationError("PATHs, --stdin, --command, --tar-stdin, --tar-command and --mariabackup exclude each other; give one") }
        if !mariabackup, let first = connectionFlags.first {
            throw ValidationError("\(first) applies to --mariabackup (a hot physical backup) only")
        }
        if mariabackup {
            if let format { throw ValidationError("--format \(format) does not apply to --mariabackup; it is for logical snapshots (--stdin or --command)") }
            if let filesCache { throw ValidationError("--files-cache=\(filesCache) does not apply to --mariabackup (every file of a fresh backup is read)") }
            if let first = excludes.first { throw ValidationError("--exclude \(first) does not apply to --mariabackup; a physical backup is stored whole") }
            if socket != nil && (host != nil || port != nil) { throw ValidationError("--socket and --host/--port exclude each other; give one way to reach the server") }
            return
        }
        if let tarFlag {
            if let format { throw ValidationError("--format \(format) does not apply to a tar stream (\(tarFlag)); it is for logical snapshots (--stdin or --command)") }
            if let filesCache { throw ValidationError("--files-cache=\(filesCache) does not apply to a tar stream (\(tarFlag)); it is for filesystem snapshots of PATHs") }
            if let first = excludes.first { throw ValidationError("--exclude \(first) does not apply to a tar stream (\(tarFlag)); it is for filesystem snapshots of PATHs") }
        }
        if let format, DumpFormatChoice(rawValue: format) == nil {
            throw ValidationError("--format \(format) is unknown; use auto, mysqldump, pgdump, pgdump-custom, pgdump-tar, pgdumpall or raw")
        }
        // Flags that do not apply to the kind of snapshot taken are refused, never ignored.
        if !paths.isEmpty, let format {
            throw ValidationError("--format \(format) does not apply to a filesystem snapshot (PATHs); it is for logical snapshots (--stdin or --command)")
        }
        if let filesCache, filesCache != "on" && filesCache != "off" {
            throw ValidationError("--files-cache \(filesCache) is unknown; use on or off")
        }
        if paths.isEmpty, let filesCache {
            throw ValidationError("--files-cache=\(filesCache) does not apply to a logical snapshot (\(stdin ? "--stdin" : "--command")); it is for filesystem snapshots of PATHs")
        }
        if paths.isEmpty, let first = excludes.first {
            throw ValidationError("--exclude \(first) does not apply to a logical snapshot (\(stdin ? "--stdin" : "--command")); it is for filesystem snapshots of PATHs")
        }
    }

    func run(_ output: Output) throws {
        let repo = try repository.open(output)
        var options = BackupOptions(source: source, tags: tags)
        if let time { options.time = try TimeParser.fromEnvironment().parse(time) }
        options.filesCache = filesCache != "off"
        // The total is the parent's size (the source's newest snapshot of this kind): an estimate.
        let kind: SnapshotKind = paths.isEmpty && tarFlag == nil && !mariabackup ? .logical : .filesystem
        let parentSize = try repo.snapshots().filter { $0.source == source && $0.kind == kind }.max { $0.completedAt < $1.completedAt }?.bytesIn
        let meter = ProgressMeter(output, action: "backup")
        let progress: (BackupProgress) -> Void = { meter.update(done: $0.bytesIn, total: parentSize, current: $0.current) }
        let manifest = try repo.withWriterLock(command: "backstop backup --source \(source)", timeout: try lock.seconds(), shared: true, warn: output.warning) {
            if mariabackup {
                let connection = MariaBackupConnection(socket: socket, host: host, port: port, user: user, defaultsFile: defaultsFile)
                return try MariaBackupSnapshotWriter(connection: connection, options: options, progress: progress).write(to: repo)
            }
            if let tarCommand {
                return try TarStreamSnapshotWriter(input: .command(tarCommand), options: options, progress: progress).write(to: repo)
            }
            if tarStdin {
                return try TarStreamSnapshotWriter(input: .fileDescriptor(0), options: options, progress: progress).write(to: repo)
            }
            if paths.isEmpty {
                let input: LogicalInput = command.map { .command($0) } ?? .fileDescriptor(0)
                return try LogicalSnapshotWriter(input: input, format: DumpFormatChoice(rawValue: format ?? "auto")!, options: options,
                                             progress: progress, warn: output.warning).write(to: repo)
            }
            return try FilesystemSnapshotWriter(paths: paths, excludes: excludes, options: options, progress: progress).write(to: repo)
        }
        meter.finish()
        for w in manifest.warnings { output.warning("\(manifest.id): \(w)") }
        if output.json {
            output.printJSON(manifest)
        } else {
            output.result(manifest.id.rawValue)
            if !output.quiet {
                let ratio = manifest.bytesIn > 0 ? Double(manifest.bytesStored) / Double(manifest.bytesIn) * 100 : 0
                output.note("\(manifest.kind.rawValue) snapshot \(manifest.id) of \(manifest.source): "
                    + "\(Output.bytes(manifest.bytesIn)) in, \(Output.bytes(manifest.bytesStored)) stored (\(String(format: "%.0f", ratio))%), "
                    + "\(manifest.kind == .filesystem ? Output.count(manifest.entryCount, "entry", "entries") : Output.count(manifest.sections.count, "section")), "
                    + Output.count(manifest.warnings.count, "warning")
                    + (manifest.filesReused.map { ", \(Output.count($0, "file")) reused unread (files cache)" } ?? ""))
            }
        }
        if !manifest.warnings.isEmpty { throw CommandExit(status: .warnings) }
    }
}
