import Foundation
import Testing

/// A private mariadbd for these tests, on a socket in a scratch folder (no TCP), with binary
/// logging in ROW format; `stop()` shuts it down. It fails (never skips) when mariadbd is missing.
final class MariaDBProcess {
    let folder: String
    let dataDirectory: String
    var socket: String { folder + "/mysqld.sock" }

    /// A fresh server (`install: true`) or one started on an existing (restored) data directory.
    init(folder: String, dataDirectory: String? = nil, binlog: Bool = true) throws {
        if TestTier.isFast { throw ShellError(command: "mariadbd", status: 1, stderr: "a MariaDB server in the fast tier (BACKSTOP_FAST=1): tag the test .liveServer, .needsLiveServer") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/mariadbd") else {
            throw ShellError(command: "mariadbd", status: 127, stderr: "mariadbd not found; run scripts/setup.sh --test, which installs mariadb-server")
        }
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let user = getuid() == 0 ? "--user=root" : ""
        if let dataDirectory {
            self.dataDirectory = dataDirectory
        } else {
            self.dataDirectory = folder + "/data"
            try sh("mariadb-install-db --no-defaults --datadir=\(self.dataDirectory) \(user) --auth-root-authentication-method=normal --skip-test-db >/dev/null")
        }
        let log = binlog ? "--log-bin=\(self.dataDirectory)/mysql-bin --binlog-format=ROW --server-id=1" : ""
        // Descriptors above 2 closed: the server must not hold the test runner's pipes.
        try sh(#"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; "#
            + "exec </dev/null >/dev/null 2>&1; /usr/sbin/mariadbd --no-defaults --datadir=\(self.dataDirectory) \(user) --socket=\(socket) --skip-networking "
            + "--pid-file=\(folder)/mysqld.pid --log-error=\(folder)/error.log --innodb-flush-log-at-trx-commit=2 \(log) &")
        for _ in 0..<300 {
            if (try? sh("mariadb-admin --no-defaults -S \(socket) -u root ping >/dev/null 2>&1")) != nil { return }
            usleep(100_000)
        }
        let errorLog = (try? String(contentsOfFile: folder + "/error.log", encoding: .utf8)) ?? ""
        throw ShellError(command: "mariadbd", status: 1, stderr: "did not start within 30 s:\n\(errorLog.suffix(2000))")
    }

    @discardableResult
    func sql(_ statements: String) throws -> String {
        let quoted = "'" + statements.replacingOccurrences(of: "'", with: "'\\''") + "'"
        return try sh("mariadb --no-defaults -S \(socket) -u root -N -B -e \(quoted)").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `CHECKSUM TABLE`'s value for each table.
    func checksums(_ tables: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for t in tables { out[t] = try sql("CHECKSUM TABLE \(t)").split(separator: "\t").last.map(String.init) }
        return out
    }

    func stop() {
        guard let pid = (try? String(contentsOfFile: folder + "/mysqld.pid", encoding: .utf8)).flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else { return }
        kill(pid, SIGTERM)
        for _ in 0..<300 where kill(pid, 0) == 0 { usleep(100_000) }
    }

    /// The binlog files, in order.
    func binlogFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dataDirectory)
            .filter { $0.hasPrefix("mysql-bin.") && $0 != "mysql-bin.index" }.sorted().map { dataDirectory + "/" + $0 }
    }

    deinit { stop() }
}

/// An application writing rows into `db.t` in a loop through one `mariadb` client, until told
/// to stop; its exit status says whether any statement failed.
final class RowWriter {
    let process = Process()
    let stopFile: String

    init(socket: String, table: String, stopFile: String) throws {
        self.stopFile = stopFile
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "while [ ! -e \(stopFile) ]; do echo \"INSERT INTO \(table) (v) VALUES (REPEAT('w', 200));\"; done "
                             + "| mariadb --no-defaults -S \(socket) -u root"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Stops the loop and returns the client's exit status (0: no statement failed).
    func stop() -> Int32 {
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Hot physical backups (`backup --mariabackup`) of a real running MariaDB under write load,
/// and `restore --prepare` onto a folder a real mariadbd starts on.
@Suite(.serialized, .tags(.liveServer), .needsLiveServer) struct MariaBackupCommandTests {
    /// A `mariadb-backup` earlier on PATH that runs the real one and then alters what it wrote
    /// into --target-dir (a crafted backup): `MB_SERVER_VERSION` replaces xtrabackup_info's
    /// server_version, `MB_GALERA` writes xtrabackup_galera_info.
    func shim(_ s: Scratch) throws -> String {
        try s.write("bin/mariadb-backup", """
            #!/bin/bash
            /usr/bin/mariadb-backup "$@" || exit $?
            for a in "$@"; do case "$a" in --target-dir=*) t="${a#--target-dir=}";; esac; done
            case " $* " in *" --backup "*) ;; *) exit 0;; esac
            if [ -n "$MB_SERVER_VERSION" ]; then sed -i "s/^server_version = .*/server_version = $MB_SERVER_VERSION/" "$t/xtrabackup_info"; fi
            if [ -n "$MB_GALERA" ]; then echo "$MB_GALERA" > "$t/xtrabackup_galera_info"; fi
            """, mode: 0o755)
        return s.sub("bin") + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    }

    /// Proves (#17 items 1 and 2): a hot backup taken while an application inserts rows (which
    /// sees no error) is stored with its binlog position, GTID, versions and needsPrepare; `show`
    /// says the copy must be prepared; a restore without --prepare says so on its last line;
    /// `restore --prepare` gives a folder a mariadbd starts on, whose static tables have the
    /// same CHECKSUM TABLE as the source, and whose written table holds exactly the source's
    /// rows up to its last id, with no gap (a consistent point); the temporary folder is gone.
    @Test func hotBackupUnderWriteLoadRestoresPreparedAndConsistent() throws {
        let s = Scratch()
        let server = try MariaDBProcess(folder: s.sub("m1"))
        defer { server.stop() }
        try server.sql("""
            CREATE DATABASE app1; CREATE TABLE app1.t (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT) ENGINE=InnoDB;
            CREATE DATABASE app2; CREATE TABLE app2.s (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB;
            USE app2; INSERT INTO app2.s SELECT seq, REPEAT('s', seq % 300) FROM seq_1_to_5000;
            CREATE TABLE app2.m (id INT PRIMARY KEY, v TEXT) ENGINE=MyISAM; INSERT INTO app2.m VALUES (1, 'myisam');
            """)
        let staticSums = try server.checksums(["app2.s", "app2.m"])
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let tmp = s.sub("tmp")
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)

        let writer = try RowWriter(socket: server.socket, table: "app1.t", stopFile: s.sub("stop-writer"))
        for _ in 0..<100 where (Int(try server.sql("SELECT COUNT(*) FROM app1.t")) ?? 0) < 200 { usleep(50_000) }
        let backup = try CLI.run(["backup", "--mariabackup", "--socket", server.socket, "--user", "root", "--source", "db1",
                                  "--tag", "nightly", "--repo", s.repo, "--json"], environment: ["TMPDIR": tmp])
        let during = Int(try server.sql("SELECT COUNT(*) FROM app1.t")) ?? 0
        #expect(writer.stop() == 0, "the application saw an error while the backup ran")
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix("backstop-") } == [], "the temporary folder is left behind")

        let manifest = try #require(try json(backup.stdout) as? [String: Any], "\(backup.stdout)")
        let id = try #require(manifest["id"] as? String)
        let physical = try #require(manifest["physicalBackup"] as? [String: Any], "\(manifest)")
        #expect(physical["tool"] as? String == "mariadb-backup")
        #expect(physical["needsPrepare"] as? Bool == true)
        #expect((physical["serverVersion"] as? String)?.hasPrefix(try server.sql("SELECT VERSION()").components(separatedBy: "-")[0]) == true, "\(physical)")
        #expect((physical["binlogFile"] as? String)?.hasPrefix("mysql-bin.") == true, "\(physical)")
        #expect((physical["binlogPosition"] as? Int ?? 0) > 0)
        #expect((physical["gtid"] as? String)?.hasPrefix("0-1-") == true, "\(physical)")
        #expect(physical["galeraUUID"] == nil)
        let position = try #require(manifest["binlogPosition"] as? [String: Any])
        #expect(position["file"] as? String == physical["binlogFile"] as? String)
        #expect(manifest["paths"] as? [String] == [])

        let show = try CLI.run(["show", id, "--repo", s.repo])
        #expect(show.status == 0)
        #expect(show.stdout.contains("physical    mariadb-backup"), "\(show.stdout)")
        #expect(show.stdout.contains("prepare     needed"), "\(show.stdout)")

        // Without --prepare: the files are there, and the last line says what to do.
        let raw = try CLI.run(["restore", id, "--to", s.sub("raw"), "--repo", s.repo])
        #expect(raw.status == 0, "\(raw.stderr)")
        #expect(FileManager.default.fileExists(atPath: s.sub("raw/xtrabackup_checkpoints")))
        let lastLine = raw.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(lastLine.contains("unprepared") && lastLine.contains("mariadb-backup --prepare --target-dir"), "\(raw.stderr)")

        let restored = try CLI.run(["restore", "--before", "2999-01-01", "--source", "db1", "--to", s.sub("db1"), "--prepare", "--repo", s.repo])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stderr.contains("prepared"), "\(restored.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.sub("db1/grastate.dat")))

        let copy = try MariaDBProcess(folder: s.sub("m2"), dataDirectory: s.sub("db1"), binlog: false)
        defer { copy.stop() }
        #expect(try copy.checksums(["app2.s", "app2.m"]) == staticSums)
        let count = Int(try copy.sql("SELECT COUNT(*) FROM app1.t")) ?? -1
        let maxID = Int(try copy.sql("SELECT COALESCE(MAX(id), 0) FROM app1.t")) ?? -1
        #expect(count >= 200 && count == maxID, "rows \(count), max id \(maxID): a gap means an inconsistent copy")
        #expect(during > count, "the application wrote \(during) rows by the end of the backup, the copy holds \(count): it kept writing while the backup ran")
        let digest = "SELECT COUNT(*), SUM(CRC32(CONCAT(id, ':', v))) FROM app1.t WHERE id <= \(maxID)"
        #expect(try copy.sql(digest) == (try server.sql(digest)))
    }

    /// Proves (#17 item 2): `--prepare` refuses before the target is touched: a backup of a
    /// server version the installed mariadb-backup cannot prepare (69, naming both versions),
    /// and a snapshot that is not a physical backup (64); a Galera backup's restore writes
    /// grastate.dat with the recorded UUID and seqno and safe_to_bootstrap: 1.
    @Test func prepareRefusesOtherVersionsAndWritesGrastateForGalera() throws {
        let s = Scratch()
        let server = try MariaDBProcess(folder: s.sub("m1"))
        defer { server.stop() }
        try server.sql("CREATE DATABASE app1; CREATE TABLE app1.t (id INT PRIMARY KEY); INSERT INTO app1.t VALUES (1), (2);")
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let path = try shim(s)
        let uuid = "6d1a6a2c-8d0e-11ef-9a7a-b3b2d62e0e5f"

        let other = try CLI.run(["backup", "--mariabackup", "--socket", server.socket, "--user", "root", "--source", "old", "--repo", s.repo],
                                environment: ["PATH": path, "MB_SERVER_VERSION": "10.6.18-MariaDB-log"])
        #expect(other.status == 0, "\(other.stderr)")
        let oldID = other.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let refused = try CLI.run(["restore", oldID, "--to", s.sub("old"), "--prepare", "--repo", s.repo])
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("10.6.18-MariaDB-log") && refused.stderr.contains("Install mariadb-backup 10.6"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.sub("old")))

        try s.write("plain/file", "x\n")
        let plain = try CLI.run(["backup", s.sub("plain"), "--source", "plain", "--repo", s.repo])
        let notPhysical = try CLI.run(["restore", plain.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "--to", s.sub("p"), "--prepare", "--repo", s.repo])
        #expect(notPhysical.status == 64, "\(notPhysical.stderr)")
        #expect(notPhysical.stderr.contains("not one"), "\(notPhysical.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.sub("p")))

        let galera = try CLI.run(["backup", "--mariabackup", "--socket", server.socket, "--user", "root", "--source", "node1", "--repo", s.repo],
                                 environment: ["PATH": path, "MB_GALERA": "\(uuid):4711 0"])
        #expect(galera.status == 0, "\(galera.stderr)")
        let galeraID = galera.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let show = try CLI.run(["show", galeraID, "--repo", s.repo, "--json"])
        let physical = try #require((try json(show.stdout) as? [String: Any])?["physicalBackup"] as? [String: Any])
        #expect(physical["galeraUUID"] as? String == uuid && physical["galeraSeqno"] as? Int == 4711, "\(physical)")
        let restored = try CLI.run(["restore", galeraID, "--to", s.sub("node1"), "--prepare", "--repo", s.repo])
        #expect(restored.status == 0, "\(restored.stderr)")
        let grastate = try String(contentsOfFile: s.sub("node1/grastate.dat"), encoding: .utf8)
        let fields = Dictionary(grastate.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }, uniquingKeysWith: { a, _ in a })
        #expect(fields == ["version": "2.1", "uuid": uuid, "seqno": "4711", "safe_to_bootstrap": "1"], "\(grastate)")
    }

    /// Proves (#17 item 1): SIGINT while mariadb-backup runs ends the backup with 130, removes
    /// the private temporary folder (mode 0700 while it exists) and stores nothing; a failing
    /// mariadb-backup (no server at the socket) exits 1 with its last lines and leaves no folder.
    @Test func interruptedOrFailedBackupLeavesNoTemporaryFolder() throws {
        let s = Scratch()
        let server = try MariaDBProcess(folder: s.sub("m1"))
        defer { server.stop() }
        try server.sql("CREATE DATABASE big; CREATE TABLE big.t (id INT PRIMARY KEY, v BLOB); USE big; INSERT INTO big.t SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_100000;")
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let tmp = s.sub("tmp")
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        func leftovers() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix("backstop-mariabackup-") } }

        let child = try SpawnedCLI(["backup", "--mariabackup", "--socket", server.socket, "--user", "root", "--source", "db1", "--repo", s.repo],
                                   log: s.sub("stderr"), environment: ["TMPDIR": tmp])
        // Wait until mariadb-backup has started copying into the folder.
        var mode: Int?
        for _ in 0..<400 {
            if let name = try leftovers().first,
               FileManager.default.fileExists(atPath: tmp + "/" + name + "/backup/ibdata1") {
                mode = (try FileManager.default.attributesOfItem(atPath: tmp + "/" + name)[.posixPermissions] as? NSNumber)?.intValue
                break
            }
            usleep(10_000)
        }
        #expect(mode == 0o700, "the folder was not seen while the backup ran, or its mode is not 0700")
        child.signal(SIGINT)
        let status = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(status == 130, "\(stderr)")
        #expect(stderr.contains("interrupted by SIGINT"), "\(stderr)")
        #expect(try leftovers() == [], "the temporary folder is left behind after SIGINT")
        #expect(try listedSnapshots(try CLI.run(["list", "--repo", s.repo, "--json"]).stdout).isEmpty)

        let failed = try CLI.run(["backup", "--mariabackup", "--socket", s.sub("nothing.sock"), "--user", "root", "--source", "db1", "--repo", s.repo],
                                 environment: ["TMPDIR": tmp])
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("last lines of its stderr") && failed.stderr.contains("nothing was stored"), "\(failed.stderr)")
        #expect(try leftovers() == [], "the temporary folder is left behind after a failure")
    }

    /// Sleeps until just after the next whole second, and returns that second.
    func nextSecond() -> Date {
        let now = Date().timeIntervalSince1970
        let next = (now + 1).rounded(.down)
        usleep(useconds_t((next - now) * 1_000_000) + 50_000)
        return Date(timeIntervalSince1970: next)
    }

    /// Proves (#17 item 4): the position a mariabackup snapshot records starts a point-in-time
    /// replay: backup, a transaction before T and one after, binlogs archived with `logs push`;
    /// `restore --prepare` then `restore SNAPSHOT --database D --until T --to -` into the server
    /// started on the copy brings back the earlier transaction and not the later one, nor
    /// another database's; --explain says the data comes from --prepare.
    @Test func pointInTimeFromTheBackupsPosition() throws {
        let s = Scratch()
        let server = try MariaDBProcess(folder: s.sub("m1"))
        defer { server.stop() }
        try server.sql("CREATE DATABASE app7; CREATE TABLE app7.t (id INT PRIMARY KEY, v TEXT); INSERT INTO app7.t VALUES (1, 'in the backup');"
                       + "CREATE DATABASE app8; CREATE TABLE app8.t (id INT PRIMARY KEY); INSERT INTO app8.t VALUES (1);")
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let backup = try CLI.run(["backup", "--mariabackup", "--socket", server.socket, "--user", "root", "--source", "db1", "--repo", s.repo])
        #expect(backup.status == 0, "\(backup.stderr)")
        let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = nextSecond()
        try server.sql("INSERT INTO app7.t VALUES (2, 'after the backup, before T'); INSERT INTO app8.t VALUES (2);")
        let until = nextSecond()
        try server.sql("INSERT INTO app7.t VALUES (3, 'after T'); FLUSH BINARY LOGS;")
        for f in try server.binlogFiles() {
            let pushed = try CLI.run(["logs", "push", "--source", "mysql-binlog", f, "--repo", s.repo])
            #expect(pushed.status == 0, "\(pushed.stderr)")
        }
        let restored = try CLI.run(["restore", id, "--to", s.sub("db1"), "--prepare", "--repo", s.repo])
        #expect(restored.status == 0, "\(restored.stderr)")
        let copy = try MariaDBProcess(folder: s.sub("m2"), dataDirectory: s.sub("db1"), binlog: false)
        defer { copy.stop() }
        #expect(try copy.sql("SELECT id FROM app7.t ORDER BY id") == "1")

        let t = ISO8601DateFormatter().string(from: until)
        let replay = try CLI.run(["restore", id, "--database", "app7", "--until", t, "--to", s.sub("replay.sql"), "--explain", "--repo", s.repo])
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(replay.stderr.contains("hot physical backup") && replay.stderr.contains("--prepare"), "\(replay.stderr)")
        try sh("mariadb --no-defaults -S \(copy.socket) -u root < \(s.sub("replay.sql"))")
        #expect(try copy.sql("SELECT id FROM app7.t ORDER BY id") == "1\n2")
        #expect(try copy.sql("SELECT id FROM app8.t ORDER BY id") == "1")

        // To standard output too; and a T before the snapshot completed is refused.
        let streamed = try CLI.run(["restore", id, "--database", "app7", "--until", t, "--to", "-", "--repo", s.repo])
        #expect(streamed.status == 0 && streamed.stdout.contains("BINLOG"), "\(streamed.stderr)")
        let early = try CLI.run(["restore", id, "--database", "app7", "--until", "2000-01-01T00:00:00Z", "--to", "-", "--repo", s.repo])
        #expect(early.status == 64, "\(early.stderr)")
    }

    /// Proves (#17 item 3): a policy job `kind: mariabackup` takes a hot backup in `backstop run`;
    /// a mariabackup job with `paths` is refused (64) naming the key; a failing mariadb-backup
    /// (wrong socket) fails the job with status 1 and its last lines, nothing stored.
    @Test func policyJobKindMariabackup() throws {
        let s = Scratch()
        let server = try MariaDBProcess(folder: s.sub("m1"))
        defer { server.stop() }
        try server.sql("CREATE DATABASE app1; CREATE TABLE app1.t (id INT PRIMARY KEY); INSERT INTO app1.t VALUES (1);")
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("policy.yaml", """
            repository: \(s.repo)
            jobs:
              - source: db1-physical
                kind: mariabackup
                socket: \(server.socket)
                user: root
                tags: [nightly]
            """)
        let run = try CLI.run(["run", s.sub("policy.yaml")])
        #expect(run.status == 0, "\(run.stderr)")
        let list = try listedSnapshots(try CLI.run(["list", "--repo", s.repo, "--json"]).stdout)
        #expect(list.count == 1 && list.first?["source"] as? String == "db1-physical")
        let id = try #require(list.first?["id"] as? String)
        let shown = try CLI.run(["show", id, "--repo", s.repo])
        #expect(shown.stdout.contains("prepare     needed"), "\(shown.stdout)")

        try s.write("bad.yaml", """
            repository: \(s.repo)
            jobs:
              - source: db1-physical
                kind: mariabackup
                paths: [/var/lib/mysql]
            """)
        let bad = try CLI.run(["run", s.sub("bad.yaml")])
        #expect(bad.status == 64 && bad.stderr.contains("'paths' does not apply to a mariabackup job"), "\(bad.stderr)")

        try s.write("down.yaml", """
            repository: \(s.repo)
            jobs:
              - source: db1-physical
                kind: mariabackup
                socket: \(s.sub("nothing.sock"))
                user: root
            """)
        let down = try CLI.run(["run", s.sub("down.yaml")])
        #expect(down.status == 1, "\(down.stderr)")
        #expect(down.stderr.contains("mariadb-backup") && down.stderr.contains("last lines"), "\(down.stderr)")
        #expect(try listedSnapshots(try CLI.run(["list", "--repo", s.repo, "--json"]).stdout).count == 1)
    }
}
