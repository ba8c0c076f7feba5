import Foundation

/// Private database servers for tests: each in its own temporary data directory, on a Unix
/// socket only (no TCP port), started by the tests and stopped when the test process exits.
/// They never touch a system instance. Missing server packages fail the test with a hint:
/// `scripts/test.sh` installs them.
enum DatabaseServers {
    /// Pid files of the servers to stop at exit, with the signal that shuts each down fast.
    nonisolated(unsafe) private static var running: [(pidFile: String, signal: Int32)] = []
    private static let lock = NSLock()

    /// Stops the server whose pid is in `pidFile` when the test process exits. The exit handler
    /// only sends signals and polls (no Foundation processes, which cannot run during exit).
    static func register(pidFile: String, signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if running.isEmpty {
            atexit { DatabaseServers.stopAll() }
        }
        running.append((pidFile, signal))
    }

    static func stopAll() {
        let all = running
        running = []
        for server in all { stop(pidFile: server.pidFile, signal: server.signal) }
    }

    /// Signals the process in `pidFile` and waits up to 30 s for it to go away.
    static func stop(pidFile: String, signal: Int32) {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.split(separator: "\n").first?.trimmingCharacters(in: .whitespaces) ?? "") else { return }
        kill(pid, signal)
        for _ in 0..<300 {
            if kill(pid, 0) != 0 && errno == ESRCH { return }
            var status: Int32 = 0
            _ = waitpid(pid, &status, WNOHANG)
            usleep(100_000)
        }
        kill(pid, SIGKILL)
    }

    static var isRoot: Bool { getuid() == 0 }

    /// In the fast tier (`scripts/test.sh --fast`) no test may start a server: one that does
    /// lacks its `.tags(.liveServer), .needsLiveServer` traits, and fails saying so.
    static func refuseInFastTier(_ server: String) throws {
        if TestTier.isFast {
            throw ServerError(description: "this test starts a \(server) server in the fast tier (BACKSTOP_FAST=1); give it `.tags(.liveServer), .needsLiveServer`, or make it use the fixtures")
        }
    }

    /// A bash prologue that closes every inherited descriptor above 2, so a daemon started from
    /// a test never holds another test's pipes open.
    static let closeInheritedDescriptors = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; "#
}

struct ServerError: Error, CustomStringConvertible {
    var description: String
}

/// A PostgreSQL server for tests.
final class PostgresServer: @unchecked Sendable {
    let directory: String
    let socketDirectory: String
    let port = 5432
    let bin: String

    private init(directory: String, bin: String) {
        self.directory = directory
        socketDirectory = directory
        self.bin = bin
    }

    static func findBin() throws -> String {
        let base = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        for v in versions.sorted(by: >) where FileManager.default.isExecutableFile(atPath: "\(base)/\(v)/bin/initdb") {
            return "\(base)/\(v)/bin"
        }
        throw ServerError(description: "PostgreSQL server binaries not found under /usr/lib/postgresql; run scripts/test.sh, which installs them")
    }

    static func start() throws -> PostgresServer {
        try DatabaseServers.refuseInFastTier("PostgreSQL")
        let bin = try findBin()
        let dir = TemporaryDirectory("pg")
        let path = dir.path
        let server = PostgresServer(directory: path, bin: bin)
        if DatabaseServers.isRoot { try shell("chown -R postgres \(path)") }
        try server.asServerUser("\(bin)/initdb -D \(path)/data -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8")
        try server.asServerUser(DatabaseServers.closeInheritedDescriptors
            + "exec \(bin)/pg_ctl -D \(path)/data -l \(path)/server.log -w -o \"-k \(path) -c listen_addresses='' -p \(server.port) -c fsync=off\" start")
        _ = Unmanaged.passRetained(dir)  // under TMPDIR, which scripts/test.sh removes
        DatabaseServers.register(pidFile: path + "/data/postmaster.pid", signal: SIGINT)
        return server
    }

    @discardableResult
    func asServerUser(_ command: String) throws -> ProcessResult {
        let r = DatabaseServers.isRoot
            ? try runProcess("/usr/sbin/runuser", ["-u", "postgres", "--", "/bin/bash", "-c", command])
            : try runProcess("/bin/bash", ["-c", command])
        if r.status != 0 { throw ServerError(description: "`\(command)` failed: \(r.stderr)") }
        return r
    }

    var connection: String { "-h \(socketDirectory) -p \(port) -U postgres" }

    /// Runs SQL with psql, stopping at the first error.
    @discardableResult
    func sql(_ statements: String, database: String = "postgres") throws -> String {
        let r = try runProcess("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", "\(port)", "-U", "postgres", "-d", database, "-At", "-c", statements])
        if r.status != 0 { throw ServerError(description: "psql failed: \(r.stderr)") }
        return r.stdoutText
    }

    func dumpall() throws -> [UInt8] {
        let r = try runProcess("pg_dumpall", ["-h", socketDirectory, "-p", "\(port)", "-U", "postgres"])
        if r.status != 0 { throw ServerError(description: "pg_dumpall failed: \(r.stderr)") }
        return r.stdout
    }

    func dump(_ database: String) throws -> [UInt8] {
        let r = try runProcess("pg_dump", ["-h", socketDirectory, "-p", "\(port)", "-U", "postgres", database])
        if r.status != 0 { throw ServerError(description: "pg_dump failed: \(r.stderr)") }
        return r.stdout
    }
}

/// A MariaDB server for tests.
final class MariaDBServer: @unchecked Sendable {
    let directory: String
    var socket: String { directory + "/mysqld.sock" }

    private init(directory: String) { self.directory = directory }

    /// Where its data directory is.
    private(set) var dataDirectory = ""
    /// Extra server options it was started with (`binlog` adds binary logging).
    private(set) var options: [String] = []

    /// Server options for binary logging in ROW format, as point-in-time restores need.
    static let binlog = ["--log-bin=mysql-bin", "--binlog-format=ROW", "--server-id=1"]

    /// Starts a server on a fresh data directory, or on `dataDirectory` (a restored copy), with
    /// extra server `options` (only the tests that need binary logging pay for it).
    static func start(dataDirectory: String? = nil, options: [String] = []) throws -> MariaDBServer {
        try DatabaseServers.refuseInFastTier("MariaDB")
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/mariadbd") else {
            throw ServerError(description: "mariadbd not found; run scripts/test.sh, which installs mariadb-server")
        }
        let dir = TemporaryDirectory("mariadb")
        _ = Unmanaged.passRetained(dir)
        let server = MariaDBServer(directory: dir.path)
        let data = dataDirectory ?? dir.path + "/data"
        server.dataDirectory = data
        server.options = options
        let user = DatabaseServers.isRoot ? "--user=root" : ""
        if dataDirectory == nil {
            let r = try shell("mariadb-install-db --no-defaults --datadir=\(data) \(user) --auth-root-authentication-method=normal --skip-test-db")
            if r.status != 0 { throw ServerError(description: "mariadb-install-db failed: \(r.stderr)") }
        }
        try server.launch()
        return server
    }

    /// Starts mariadbd on this server's data directory and socket, and waits until it answers.
    private func launch() throws {
        let user = DatabaseServers.isRoot ? "--user=root" : ""
        let extra = options.joined(separator: " ")
        let launch = DatabaseServers.closeInheritedDescriptors + "exec </dev/null >/dev/null 2>&1; /usr/sbin/mariadbd --no-defaults --datadir=\(dataDirectory) \(user) --socket=\(socket) --skip-networking --pid-file=\(directory)/mysqld.pid --log-error=\(directory)/error.log --innodb-flush-log-at-trx-commit=2 \(extra) &"
        try runProcess("/bin/bash", ["-c", launch])
        DatabaseServers.register(pidFile: directory + "/mysqld.pid", signal: SIGTERM)
        for _ in 0..<300 {
            if (try? shell("mariadb-admin --no-defaults -S \(socket) -u root ping"))?.status == 0 { return }
            usleep(100_000)
        }
        let log = (try? String(contentsOfFile: directory + "/error.log", encoding: .utf8)) ?? ""
        throw ServerError(description: "mariadbd did not start within 30 s; its log:\n\(log.suffix(2000))")
    }

    /// Stops the server and starts it again on the same data directory and socket.
    func restart() throws {
        stop()
        try launch()
    }

    /// Shuts the server down and waits for it to exit.
    func stop() {
        DatabaseServers.stop(pidFile: directory + "/mysqld.pid", signal: SIGTERM)
    }

    @discardableResult
    func sql(_ statements: String, database: String? = nil) throws -> String {
        var args = ["--no-defaults", "-S", socket, "-u", "root", "-N", "-B", "-e", statements]
        if let database { args.append(database) }
        let r = try runProcess("mariadb", args)
        if r.status != 0 { throw ServerError(description: "mariadb failed: \(r.stderr)") }
        return r.stdoutText
    }

    func dumpAll() throws -> [UInt8] {
        let r = try runProcess("mariadb-dump", ["--no-defaults", "-S", socket, "-u", "root", "--all-databases", "--single-transaction", "--routines", "--events"])
        if r.status != 0 { throw ServerError(description: "mariadb-dump failed: \(r.stderr)") }
        return r.stdout
    }

    func dump(_ database: String) throws -> [UInt8] {
        let r = try runProcess("mariadb-dump", ["--no-defaults", "-S", socket, "-u", "root", "--single-transaction", database])
        if r.status != 0 { throw ServerError(description: "mariadb-dump failed: \(r.stderr)") }
        return r.stdout
    }
}
