import Foundation

/// How `mariadb-backup` reaches the server: a socket, or a host and port; a user; a defaults
/// file (for the password: `[client]`/`[mariadb-backup]` sections). Nil fields are left to
/// mariadb-backup's own defaults.
public struct MariaBackupConnection: Sendable, Equatable {
    public var socket: String?
    public var host: String?
    public var port: Int?
    public var user: String?
    public var defaultsFile: String?

    public init(socket: String? = nil, host: String? = nil, port: Int? = nil, user: String? = nil, defaultsFile: String? = nil) {
        self.socket = socket
        self.host = host
        self.port = port
        self.user = user
        self.defaultsFile = defaultsFile
    }

    /// The connection options, `--defaults-file` first (mariadb-backup requires it there).
    var arguments: [String] {
        var args: [String] = []
        if let defaultsFile { args.append("--defaults-file=" + defaultsFile) }
        if let socket { args.append("--socket=" + socket) }
        if let host { args.append("--host=" + host) }
        if let port { args.append("--port=\(port)") }
        if let user { args.append("--user=" + user) }
        return args
    }
}

/// What a hot physical backup (`backup --mariabackup`) knows about itself, from the files
/// mariadb-backup writes beside the data: `xtrabackup_info` (versions), `xtrabackup_binlog_info`
/// (binlog file, position, GTID: also in the manifest's `binlogPosition`, where a point-in-time
/// restore starts) and, on a Galera node, `xtrabackup_galera_info` (cluster state UUID and
/// seqno). Key names are stable.
public struct PhysicalBackup: Codable, Sendable, Equatable {
    /// `mariadb-backup`.
    public var tool: String
    /// The tool's version (`10.11.19-MariaDB`).
    public var toolVersion: String?
    /// The server's version (`10.11.19-MariaDB-0+deb12u1-log`).
    public var serverVersion: String?
    public var binlogFile: String?
    public var binlogPosition: Int64?
    public var gtid: String?
    public var galeraUUID: String?
    public var galeraSeqno: Int64?
    /// Always true as stored: the copy holds the redo log written while it was taken, and a
    /// server starts on it only after `mariadb-backup --prepare` (`restore --prepare`).
    public var needsPrepare: Bool

    public init(tool: String = "mariadb-backup", toolVersion: String? = nil, serverVersion: String? = nil,
                binlogFile: String? = nil, binlogPosition: Int64? = nil, gtid: String? = nil,
                galeraUUID: String? = nil, galeraSeqno: Int64? = nil, needsPrepare: Bool = true) {
        self.tool = tool
        self.toolVersion = toolVersion
        self.serverVersion = serverVersion
        self.binlogFile = binlogFile
        self.binlogPosition = binlogPosition
        self.gtid = gtid
        self.galeraUUID = galeraUUID
        self.galeraSeqno = galeraSeqno
        self.needsPrepare = needsPrepare
    }

    /// Reads the info files of a backup folder (`xtrabackup_*`), whichever exist.
    public static func read(folder: String) -> PhysicalBackup {
        var b = PhysicalBackup()
        func text(_ name: String) -> String? {
            (try? FileSystem.readFile(folder + "/" + name)).map { String(decoding: $0, as: UTF8.self) }
        }
        if let info = text("xtrabackup_info") {
            for line in info.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                let key = line[..<eq].trimmingCharacters(in: .whitespaces)
                let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                if key == "tool_version" { b.toolVersion = value }
                if key == "server_version" { b.serverVersion = value }
            }
        }
        if let binlog = text("xtrabackup_binlog_info") { b.parseBinlogInfo(binlog) }
        if let galera = text("xtrabackup_galera_info") { b.parseGaleraInfo(galera) }
        return b
    }

    /// `xtrabackup_binlog_info`: `FILE<TAB>POSITION[<TAB>GTID]`.
    mutating func parseBinlogInfo(_ text: String) {
        let fields = text.split(whereSeparator: { $0 == "\t" || $0 == "\n" || $0 == " " }).map(String.init)
        guard fields.count >= 2, let position = Int64(fields[1]) else { return }
        binlogFile = fields[0]
        binlogPosition = position
        gtid = fields.count >= 3 && !fields[2].isEmpty ? fields[2] : nil
    }

    /// `xtrabackup_galera_info`: `UUID:SEQNO` (MariaDB may add ` DOMAIN` or a GTID after a space).
    mutating func parseGaleraInfo(_ text: String) {
        guard let first = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).first,
              let colon = first.lastIndex(of: ":"), let seqno = Int64(first[first.index(after: colon)...]) else { return }
        galeraUUID = String(first[..<colon])
        galeraSeqno = seqno
    }

    /// Where a point-in-time restore starts replaying archived binlogs.
    public var binlog: BinlogPosition? {
        guard let binlogFile, let binlogPosition else { return nil }
        return BinlogPosition(file: binlogFile, position: binlogPosition, gtid: gtid)
    }

    /// `MAJOR.MINOR` of a version string (`10.11.19-MariaDB-log` gives `10.11`).
    public static func majorMinor(_ version: String) -> String? {
        let digits = version.split(whereSeparator: { !$0.isNumber && $0 != "." }).first.map(String.init) ?? ""
        let parts = digits.split(separator: ".")
        guard parts.count >= 2 else { return nil }
        return "\(parts[0]).\(parts[1])"
    }

    /// `grastate.dat` for a node bootstrapping a new cluster from this backup.
    public var grastate: String? {
        guard let galeraUUID, let galeraSeqno else { return nil }
        return """
            # GALERA saved state
            version: 2.1
            uuid:    \(galeraUUID)
            seqno:   \(galeraSeqno)
            safe_to_bootstrap: 1

            """
    }
}

/// Takes a hot physical backup with `mariadb-backup --backup` into a private temporary folder
/// (mode 0700, under `TMPDIR`), then stores the folder's contents as a filesystem snapshot
/// (entries under their own names, so `restore --to DIR` makes DIR the data directory) with
/// its `physicalBackup` record. The folder is removed afterwards, on failure, and when the
/// process is interrupted (the cleanup registry of `Interruption`). mariadb-backup's output goes
/// to a log file whose last lines explain a failure (`BackupError.commandFailed`, 1).
///
/// A folder and not `--stream=mbstream`: an mbstream is not tar, so storing it would mean
/// unpacking it into a folder first anyway (`mbstream -x`); and mariadb-backup writes its info
/// files only into a target folder. The folder costs disk space the size of the data once.
public struct MariaBackupSnapshotWriter {
    public var connection: MariaBackupConnection
    public var options: BackupOptions
    public var progress: ((BackupProgress) -> Void)?
    /// The tool, found on `PATH`.
    public var tool = "mariadb-backup"

    public init(connection: MariaBackupConnection, options: BackupOptions, progress: ((BackupProgress) -> Void)? = nil) {
        self.connection = connection
        self.options = options
        self.progress = progress
    }

    /// Runs the backup, then writes and commits the snapshot. The caller holds the writer lock.
    public func write(to repository: Repository) throws -> Manifest {
        try options.validate()
        var template = Array((NSTemporaryDirectory() + "/backstop-mariabackup-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw BackupError.input("cannot create a temporary folder in \(NSTemporaryDirectory()): \(String(cString: strerror(errno))); set TMPDIR to a folder with room for the data directory")
        }
        let folder = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(folder, 0o700)
        let cleanup = Interruption.register { try? FileSystem.removeTree(folder) }
        defer {
            try? FileSystem.removeTree(folder)
            Interruption.unregister(cleanup)
        }
        let target = folder + "/backup"
        // On a Galera node the cluster state (xtrabackup_galera_info) is what `restore --prepare`
        // turns into grastate.dat; mariadb-backup records it only when asked, and refuses the
        // option on a server without wsrep, so ask the server first.
        let galera = Self.isGaleraNode(connection) ? ["--galera-info"] : []
        let arguments = [tool] + connection.arguments + ["--backup"] + galera + ["--target-dir=" + target]
        let shown = arguments.joined(separator: " ")
        let child = try ShellCommand("exec " + arguments.map(Repository.shellQuoted).joined(separator: " "), stdout: .sameAsStderr)
        // If the process is ended before it unwinds (the signal watcher's grace period), the
        // copy is stopped first (cleanups run newest first), then the folder removed.
        let pid = child.pid
        let stopCopy = Interruption.register { kill(pid, SIGKILL) }
        defer { Interruption.unregister(stopCopy) }
        // Wait, checking for SIGINT/SIGTERM: the copy is stopped at once (it is discarded) and
        // the folder removed on the way out.
        while true {
            var raw: Int32 = 0
            let r = waitpid(child.pid, &raw, WNOHANG)
            if r == child.pid { child.markExited(raw); break }
            if r < 0 && errno != EINTR { break }
            do { try Interruption.check() } catch {
                kill(child.pid, SIGKILL)
                child.wait()
                throw error
            }
            usleep(50_000)
        }
        let (status, signal) = child.wait()
        if signal != 0 { throw BackupError.commandKilled(command: shown, signal: signal, stderrTail: child.tail) }
        if status != 0 { throw BackupError.commandFailed(command: shown, status: status, stderrTail: child.tail) }
        let record = PhysicalBackup.read(folder: target)
        let names = try FileSystem.list(target).sorted()
        var store = options
        // Every file is new: the files cache (inode, ctime) cannot match a fresh folder.
        store.filesCache = false
        var writer = FilesystemSnapshotWriter(paths: names.map { target + "/" + $0 }, options: store, progress: progress)
        writer.recordedPaths = []
        writer.physicalBackup = record
        return try writer.write(to: repository)
    }
}

extension MariaBackupSnapshotWriter {
    /// Whether the server has wsrep on (`SELECT @@GLOBAL.wsrep_on` through the `mariadb` client,
    /// with the backup's own connection options). A server that cannot be asked, or a MySQL
    /// without the variable, is taken as not a Galera node: mariadb-backup then reports the
    /// connection problem itself.
    static func isGaleraNode(_ connection: MariaBackupConnection) -> Bool {
        let arguments = ["mariadb"] + connection.arguments + ["-N", "-B", "-e", "SELECT @@GLOBAL.wsrep_on"]
        guard let query = try? ShellCommand("exec " + arguments.map(Repository.shellQuoted).joined(separator: " "), stdout: .pipe) else { return false }
        let output = query.readAllOutput()
        guard query.wait().status == 0 else { return false }
        let value = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return value == "1" || value.uppercased() == "ON"
    }
}

/// `restore --prepare`: the checks before a restore and the work after it.
public enum MariaBackupPrepare {
    /// Why a restore cannot or may not prepare.
    public enum Failure: Error, CustomStringConvertible, ExitStatusProviding {
        /// The snapshot is not a `backup --mariabackup` one.
        case notPhysical(SnapshotID)
        /// The installed mariadb-backup cannot prepare the server version's backup.
        case versionMismatch(snapshot: SnapshotID, server: String, tool: String)
        /// No mariadb-backup to run.
        case toolMissing(reason: String)
        /// `mariadb-backup --prepare` failed.
        case prepareFailed(directory: String, status: Int32, tail: String)

        public var description: String {
            switch self {
            case let .notPhysical(id):
                return "--prepare applies to hot physical backups (backup --mariabackup); snapshot \(id) is not one. Restore it without --prepare"
            case let .versionMismatch(id, server, tool):
                return "snapshot \(id) was taken from MariaDB \(server), and the installed mariadb-backup is \(tool): "
                    + "a backup is prepared only by mariadb-backup of the server's major.minor version. Install mariadb-backup \(PhysicalBackup.majorMinor(server) ?? server) "
                    + "(or run restore without --prepare and prepare the copy where that version is installed); nothing was restored"
            case let .toolMissing(reason):
                return "cannot run mariadb-backup: \(reason). Install it (Debian: apt-get install mariadb-backup) of the server's version; nothing was restored"
            case let .prepareFailed(directory, status, tail):
                let t = tail.trimmingCharacters(in: .whitespacesAndNewlines)
                return "mariadb-backup --prepare --target-dir=\(directory) exited with status \(status); the restored (unprepared) copy is in \(directory)"
                    + (t.isEmpty ? "" : "\nlast lines of its output:\n" + t)
            }
        }

        public var exitStatus: ExitStatus {
            switch self {
            case .notPhysical: return .usage
            case .versionMismatch, .toolMissing: return .unavailable
            case .prepareFailed: return .failure
            }
        }
    }

    /// The installed tool's version line (`mariadb-backup --version`).
    public static func toolVersion(tool: String = "mariadb-backup") throws -> String {
        let child = try ShellCommand("exec " + Repository.shellQuoted(tool) + " --version", stdout: .sameAsStderr)
        let (status, _) = child.wait()
        let text = child.tail.trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0 else { throw Failure.toolMissing(reason: "`\(tool) --version` exited with status \(status)\(text.isEmpty ? "" : ": " + text)") }
        return text
    }

    /// Refuses, before anything is written, a snapshot that is not a physical backup, or one the
    /// installed tool cannot prepare (MariaDB: the same major.minor version).
    public static func check(_ manifest: Manifest, tool: String = "mariadb-backup") throws {
        guard let backup = manifest.physicalBackup else { throw Failure.notPhysical(manifest.id) }
        let installed = try toolVersion(tool: tool)
        // `mariadb-backup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)`
        let toolServer = installed.range(of: "server ").map { String(installed[$0.upperBound...]) } ?? installed
        guard let server = backup.serverVersion, let want = PhysicalBackup.majorMinor(server) else { return }
        if PhysicalBackup.majorMinor(toolServer) != want {
            throw Failure.versionMismatch(snapshot: manifest.id, server: server, tool: installed)
        }
    }

    /// Runs `mariadb-backup --prepare` on a restored copy, then, for a Galera backup, writes
    /// `grastate.dat` (`safe_to_bootstrap: 1`). A failure carries the log's last lines.
    public static func prepare(directory: String, backup: PhysicalBackup, tool: String = "mariadb-backup") throws {
        let command = "exec " + [tool, "--prepare", "--target-dir=" + directory].map(Repository.shellQuoted).joined(separator: " ")
        let child = try ShellCommand(command, stdout: .sameAsStderr)
        let (status, _) = child.wait()
        if status != 0 { throw Failure.prepareFailed(directory: directory, status: status, tail: child.tail) }
        if let grastate = backup.grastate {
            do {
                let sink = try FileSink(path: directory + "/grastate.dat.backstop-tmp", mode: 0o660)
                try Array(grastate.utf8).withUnsafeBytes { try sink.write($0) }
                try sink.finish()
                try FileSystem.rename(directory + "/grastate.dat.backstop-tmp", directory + "/grastate.dat")
            } catch {
                throw RestoreError.targetWrite(target: directory, reason: "cannot write grastate.dat: \(error)")
            }
        }
    }
}
