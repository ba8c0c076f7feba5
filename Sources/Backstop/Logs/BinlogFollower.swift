import Foundation

/// `backstop logs follow`: streams a server's binlogs with `mariadb-binlog
/// --read-from-remote-server --raw --stop-never` into a private spool folder and archives them:
/// each closed file as a whole segment (then removed from the spool), the open one at every
/// flush interval as a partial segment (so at most one interval of writes is at risk).
///
/// Resumes after a restart (of itself or of the server): it asks for the newest file in the
/// spool, else the file after the newest archived whole segment, else the oldest file the server
/// still has (`SHOW BINARY LOGS`). When the stream ends (the server went away), what arrived is
/// archived and the stream is started again after `retryDelay`.
///
/// Crash behaviour: the spool keeps every file not yet archived whole; the next start archives
/// them again (an idempotent push) and resumes.
public final class BinlogFollower: @unchecked Sendable {
    public struct Connection: Sendable {
        public var host: String?
        public var port: Int?
        public var user: String?
        public var socket: String?
        public var passwordFile: String?

        public init(host: String? = nil, port: Int? = nil, user: String? = nil, socket: String? = nil, passwordFile: String? = nil) {
            self.host = host
            self.port = port
            self.user = user
            self.socket = socket
            self.passwordFile = passwordFile
        }

        /// The client options (`--no-defaults` first, so only these apply; a password file is read
        /// by the client as an option file: `[client]` with `password=…`).
        var arguments: String {
            var a = passwordFile.map { "--defaults-extra-file=" + Repository.shellQuoted($0) } ?? "--no-defaults"
            if let host { a += " --host=" + Repository.shellQuoted(host) }
            if let port { a += " --port=\(port)" }
            if let user { a += " --user=" + Repository.shellQuoted(user) }
            if let socket { a += " --socket=" + Repository.shellQuoted(socket) }
            return a
        }
    }

    public let repository: Repository
    public let source: String
    public let connection: Connection
    public let spool: String
    public let flushInterval: TimeInterval
    public var retryDelay: TimeInterval = 2
    /// What it did, for the log (stderr).
    public var note: (String) -> Void = { _ in }
    /// What may make a restore of its archive wrong (statement-based logging), for the log.
    public var warn: (String) -> Void = { _ in }
    /// How many warnings it gave (each file's statements once, the server's format once a start).
    public private(set) var warningCount = 0
    private var warnedFiles: Set<String> = []
    private let stopLock = NSLock()
    private var stopRequested = false

    /// Asks `run()` to stop: it ends the stream, archives the spool once more and returns.
    public func stop() {
        stopLock.lock()
        stopRequested = true
        stopLock.unlock()
    }

    private var stopping: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopRequested
    }

    public init(repository: Repository, source: String, connection: Connection, spool: String, flushInterval: TimeInterval) {
        self.repository = repository
        self.source = source
        self.connection = connection
        self.spool = spool
        self.flushInterval = flushInterval
    }

    /// Runs until interrupted (SIGINT/SIGTERM: `Interrupted` is thrown after a last archive pass)
    /// or until `stop()` (it then returns after a last archive pass).
    public func run() throws {
        if !FileSystem.isDirectory(spool) { try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
        while !stopping {
            let first = try startingFile()
            checkFormat()
            note("streaming binlogs from \(first) into \(spool)")
            let command = "cd \(Repository.shellQuoted(spool)) && exec mariadb-binlog \(connection.arguments) --read-from-remote-server --raw --stop-never --result-file=./ \(Repository.shellQuoted(first))"
            let child = try ShellCommand(command, stdout: .sameAsStderr)
            let childPID = child.pid
            let killOnSignal = Interruption.register { kill(childPID, SIGTERM) }
            defer { Interruption.unregister(killOnSignal) }
            var ended = false
            while !ended {
                var waited: TimeInterval = 0
                while waited < flushInterval && !ended {
                    do {
                        try Interruption.check()
                    } catch {
                        child.terminate()
                        try? archiveSpool()
                        throw error
                    }
                    if stopping {
                        child.terminate()
                        try archiveSpool()
                        return
                    }
                    usleep(100_000)
                    waited += 0.1
                    var raw: Int32 = 0
                    if waitpid(child.pid, &raw, WNOHANG) == child.pid { ended = true; child.markExited(raw) }
                }
                try archiveSpool()
            }
            note("mariadb-binlog stopped (\(child.tail.isEmpty ? "no message" : child.tail)); resuming in \(Int(retryDelay)) s")
            var waited: TimeInterval = 0
            while waited < retryDelay && !stopping {
                try Interruption.check()
                usleep(100_000)
                waited += 0.1
            }
        }
    }

    /// The binlog files in the spool, in log order.
    func spoolFiles() throws -> [String] {
        try FileSystem.list(spool).filter { BinlogReader.sequence(of: $0) != nil && Repository.isValidLogName($0) }
            .sorted { BinlogReader.sequence(of: $0)!.number < BinlogReader.sequence(of: $1)!.number }
    }

    /// Archives every file in the spool: closed files whole (then removed from the spool), the
    /// open one as a partial segment.
    public func archiveSpool() throws {
        for name in try spoolFiles() {
            let path = spool + "/" + name
            let outcome = try repository.pushLog(path: path, source: source, kind: .mysqlBinlog)
            if let warning = outcome.segment.statementWarning, !warnedFiles.contains(name) {
                warnedFiles.insert(name)
                warningCount += 1
                warn(warning)
            }
            if !outcome.segment.partial {
                if case let .archived(seg) = outcome {
                    note("archived \(seg.name) (\(seg.size) bytes, events to \(seg.lastEventAt.map(Timestamp.format) ?? "?"))")
                }
                unlink(path)   // closed: mariadb-binlog writes no more to it
            }
        }
    }

    /// Warns when the server logs changes as statements (`@@GLOBAL.binlog_format` not ROW):
    /// what it archives then cannot be replayed one database at a time exactly.
    func checkFormat() {
        guard let format = try? query("SELECT @@GLOBAL.binlog_format").trimmingCharacters(in: .whitespacesAndNewlines), !format.isEmpty else { return }
        if format.uppercased() != "ROW" {
            warningCount += 1
            warn("the server logs with binlog_format=\(format): changes it logs as SQL statements cannot be replayed exactly for one database (restore --until --database picks statements by the session's default database, not by the tables they change); set binlog_format=ROW (SET GLOBAL binlog_format=ROW and in my.cnf)")
        }
    }

    /// The output of one query (`mariadb -N -B -e`), or the tool's failure.
    func query(_ sql: String) throws -> String {
        let command = try ShellCommand("exec mariadb \(connection.arguments) -N -B -e \(Repository.shellQuoted(sql))", stdout: .pipe)
        let output = command.readAllOutput()
        let (status, _) = command.wait()
        guard status == 0 else { throw LogError.toolFailed(command: "mariadb -e '\(sql)'", status: status, stderr: command.tail) }
        return String(decoding: output, as: UTF8.self)
    }

    /// Where the stream starts: the newest spool file, else the file after the newest whole
    /// archived segment (or that segment's file while it was partial), else the server's oldest.
    func startingFile() throws -> String {
        if let newest = try spoolFiles().last { return newest }
        let chain = Repository.chainView(try repository.logSegments(source: source))
        if let last = chain.last {
            if last.partial || last.closed == false { return last.name }
            if let next = last.nextFile { return next }
            if let (base, n) = BinlogReader.sequence(of: last.name) { return "\(base).\(String(format: "%06d", n + 1))" }
        }
        let query = try ShellCommand("exec mariadb \(connection.arguments) -N -B -e 'SHOW BINARY LOGS'", stdout: .pipe)
        let output = query.readAllOutput()
        let (status, _) = query.wait()
        guard status == 0, let first = String(decoding: output, as: UTF8.self).split(separator: "\n").first?.split(separator: "\t").first else {
            throw LogError.toolFailed(command: "mariadb -e 'SHOW BINARY LOGS'", status: status, stderr: query.tail.isEmpty ? "the server has no binary logs: start it with --log-bin" : query.tail)
        }
        return String(first)
    }
}
