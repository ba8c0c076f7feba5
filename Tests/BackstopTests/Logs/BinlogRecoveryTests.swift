import Foundation
import Testing
@testable import Backstop

/// Point-in-time recovery of one MariaDB database from a dump and archived binlogs, against a
/// real server with `--log-bin --binlog-format=ROW`.
@Suite(.serialized, .tags(.liveServer), .needsLiveServer) struct BinlogRecoveryTests {
    static let mariadb = Result { try MariaDBServer.start(options: MariaDBServer.binlog) }

    /// The server's binlog files (`mysql-bin.000001`…), in order.
    func binlogFiles(_ server: MariaDBServer) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: server.dataDirectory)
            .filter { $0.hasPrefix("mysql-bin.") && $0 != "mysql-bin.index" }.sorted()
            .map { server.dataDirectory + "/" + $0 }
    }

    func pushAll(_ repo: Repository, _ server: MariaDBServer) throws {
        for f in try binlogFiles(server) { try repo.pushLog(path: f, source: "mysql-binlog", kind: .mysqlBinlog) }
    }

    func backupDump(_ repo: Repository, _ server: MariaDBServer, _ dir: TemporaryDirectory) throws -> Manifest {
        let r = try runProcess("mariadb-dump", ["--no-defaults", "-S", server.socket, "-u", "root", "--all-databases",
                                                "--single-transaction", "--master-data=2", "--gtid"])
        #expect(r.status == 0, "\(r.stderr)")
        try writeFile(dir.sub("dump.sql"), r.stdout)
        let fd = open(dir.sub("dump.sql"), O_RDONLY)
        defer { close(fd) }
        return try LogicalSnapshotWriter(input: .fileDescriptor(fd), options: BackupOptions(source: "mysql-dump")).write(to: repo)
    }

    /// Sleeps until just after the next whole second, and returns that second.
    func nextSecond() -> Date {
        let now = Date().timeIntervalSince1970
        let next = (now + 1).rounded(.down)
        usleep(useconds_t((next - now) * 1_000_000) + 50_000)
        return Date(timeIntervalSince1970: next)
    }

    /// Proves: a segment records what the binlog holds (times, positions, GTIDs, the rotate to
    /// the next file, its SHA-256); the open file is a partial segment, superseded by the closed
    /// one; a flipped byte fails the event checksum.
    @Test func segmentsRecordTimesPositionsAndGTIDs() throws {
        let server = try Self.mariadb.get()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try server.sql("CREATE DATABASE seg1; CREATE TABLE seg1.t (id INT PRIMARY KEY); INSERT INTO seg1.t VALUES (1); FLUSH BINARY LOGS;")
        try server.sql("INSERT INTO seg1.t VALUES (2);")
        let files = try binlogFiles(server)
        let closed = files[files.count - 2], open = files[files.count - 1]
        let name = (closed as NSString).lastPathComponent, openName = (open as NSString).lastPathComponent
        let s = try repo.pushLog(path: closed, source: "mysql-binlog", kind: .mysqlBinlog).segment
        #expect(!s.partial && s.closed == true && s.nextFile == openName)
        #expect(s.sha256 == SHA256Hasher.digest(try readFile(closed)))
        #expect(s.firstEventAt != nil && s.lastEventAt != nil && s.endPosition == "\(name):\(s.size)")
        #expect(s.gtidEnd?.hasPrefix("0-1-") == true)
        let p = try repo.pushLog(path: open, source: "mysql-binlog", kind: .mysqlBinlog).segment
        #expect(p.partial && p.objectName.hasPrefix(openName + ".partial."))
        try server.sql("FLUSH BINARY LOGS;")
        let whole = try repo.pushLog(path: open, source: "mysql-binlog", kind: .mysqlBinlog).segment
        #expect(!whole.partial && whole.closed == true)
        #expect(try repo.logSegments(source: "mysql-binlog").filter { $0.name == openName }.map(\.partial) == [false])

        var bytes = try readFile(closed)
        bytes[bytes.count - 10] ^= 0x40
        #expect(throws: LogError.self) { try BinlogReader.summarize(bytes, name: name) }
    }

    /// Proves: each push of a binlog that is still open stores only what is new since the last
    /// one (a part from the earlier end on, as `logs follow` pushes at every interval), the parts
    /// read together are the file's bytes (`logs get`, `logs check`, `restore --until`), and
    /// the closed file supersedes them.
    @Test func anOpenBinlogIsArchivedInPartsHoldingWhatIsNew() throws {
        let server = try Self.mariadb.get()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try server.sql("FLUSH BINARY LOGS; CREATE DATABASE parts1; CREATE TABLE parts1.t (id INT PRIMARY KEY, v TEXT); INSERT INTO parts1.t VALUES (1, 'in the dump');")
        let dump = try backupDump(repo, server, dir)
        let open = try binlogFiles(server).last!
        let name = (open as NSString).lastPathComponent
        try pushAll(repo, server)
        let first = try repo.pushLog(path: open, source: "mysql-binlog", kind: .mysqlBinlog).segment
        #expect(first.partial)
        var ends = [first.endOffset]
        for round in 2...4 {
            try server.sql("INSERT INTO parts1.t VALUES (\(round), REPEAT('x', 2000));")
            let outcome = try repo.pushLog(path: open, source: "mysql-binlog", kind: .mysqlBinlog)
            guard case let .archived(part) = outcome else { Issue.record("round \(round): \(outcome)"); return }
            #expect(part.partial && part.offset == ends.last && part.size == part.endOffset - ends.last!, "round \(round): \(part)")
            #expect(part.size < 8000, "a part holds what is new, not the file so far (\(part.size) bytes)")
            ends.append(part.endOffset)
        }
        let again = try repo.pushLog(path: open, source: "mysql-binlog", kind: .mysqlBinlog)
        #expect(again == .alreadyArchived(again.segment) && again.segment.endOffset == ends.last, "\(again)")
        let parts = try repo.logSegments(source: "mysql-binlog").filter { $0.name == name }
        #expect(parts.map(\.endOffset) == ends && parts.allSatisfy(\.partial))
        let file = try readFile(open)
        #expect(try repo.getLog(source: "mysql-binlog", name: name, to: dir.sub("got")).endOffset == ends.last)
        #expect(try readFile(dir.sub("got")) == Array(file[0..<Int(ends.last!)]))
        #expect(try repo.checkLogs(source: "mysql-binlog").problems == [])

        let plan = try repo.planBinlogReplay(snapshot: dump, logSource: "mysql-binlog", until: Date().addingTimeInterval(5))
        try repo.restoreUntil(plan, database: "parts1", to: dir.sub("parts1.sql"))
        let target = try MariaDBServer.start()
        defer { target.stop() }
        let load = try runProcess("mariadb", ["--no-defaults", "-S", target.socket, "-u", "root"], inputFile: dir.sub("parts1.sql"))
        #expect(load.status == 0, "\(load.stderr)")
        #expect(try target.sql("SELECT id FROM parts1.t ORDER BY id") == "1\n2\n3\n4\n")

        try server.sql("FLUSH BINARY LOGS;")
        let whole = try repo.pushLog(path: open, source: "mysql-binlog", kind: .mysqlBinlog).segment
        #expect(try !whole.partial && whole.sha256 == SHA256Hasher.digest(readFile(open)))
        #expect(try repo.logSegments(source: "mysql-binlog").filter { $0.name == name }.map(\.partial) == [false])
    }

    /// Proves: `--until T` between two transactions replays the earlier and not the later; only
    /// the chosen database's rows come back; the dump records its binlog position.
    @Test func untilBetweenTwoTransactionsExcludesTheLaterOne() throws {
        let server = try Self.mariadb.get()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try server.sql("CREATE DATABASE app07; CREATE TABLE app07.t (id INT PRIMARY KEY, v TEXT); INSERT INTO app07.t VALUES (1, 'in the dump');"
                       + "CREATE DATABASE app08; CREATE TABLE app08.t (id INT PRIMARY KEY); INSERT INTO app08.t VALUES (1);")
        let dump = try backupDump(repo, server, dir)
        #expect(dump.binlogPosition != nil)
        _ = nextSecond()
        try server.sql("INSERT INTO t VALUES (2, 'after the dump, before T'); INSERT INTO app08.t VALUES (2);", database: "app07")
        let until = nextSecond()
        usleep(200_000)
        try server.sql("INSERT INTO app07.t VALUES (3, 'after T');")
        try server.sql("FLUSH BINARY LOGS;")
        try pushAll(repo, server)

        let plan = try repo.planBinlogReplay(snapshot: dump, logSource: "mysql-binlog", until: until)
        #expect(plan.segments.first?.name == dump.binlogPosition?.file)
        #expect(plan.explanation.contains(dump.id.rawValue))
        try repo.restoreUntil(plan, database: "app07", to: dir.sub("app07.sql"))

        let target = try MariaDBServer.start()
        let load = try runProcess("mariadb", ["--no-defaults", "-S", target.socket, "-u", "root"], inputFile: dir.sub("app07.sql"))
        #expect(load.status == 0, "\(load.stderr)")
        #expect(try target.sql("SELECT id FROM app07.t ORDER BY id") == "1\n2\n")
        #expect(try target.sql("SHOW DATABASES LIKE 'app08'") == "")
        target.stop()
    }

    /// Proves the granularity of `--until` over binlogs, whose event times are whole seconds:
    /// a change stamped the second before T is replayed, one stamped T's second is not (it
    /// happened at T or later), and a T with a fraction is taken down to its second (so a change
    /// stamped that second is not replayed) with a warning saying so; T one second later
    /// replays it.
    @Test func untilIsWholeSecondsEventsStampedTsSecondAreNotReplayed() throws {
        let server = try Self.mariadb.get()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try server.sql("CREATE DATABASE edge; CREATE TABLE edge.t (id INT PRIMARY KEY); INSERT INTO edge.t VALUES (1);")
        let dump = try backupDump(repo, server, dir)
        _ = nextSecond()
        try server.sql("INSERT INTO edge.t VALUES (2);")   // stamped the second before T
        let t = nextSecond()
        try server.sql("INSERT INTO edge.t VALUES (3);")   // stamped T's second, 50 ms after T
        _ = nextSecond()
        try server.sql("FLUSH BINARY LOGS;")
        try pushAll(repo, server)

        let target = try MariaDBServer.start()
        defer { target.stop() }
        for (until, rows, warned) in [(t, "1\n2\n", false), (t.addingTimeInterval(0.9), "1\n2\n", true), (t.addingTimeInterval(1), "1\n2\n3\n", false)] {
            let plan = try repo.planBinlogReplay(snapshot: dump, logSource: "mysql-binlog", until: until)
            #expect(plan.warnings.contains { $0.contains("whole seconds") && $0.contains(Timestamp.format(t)) } == warned, "\(until): \(plan.warnings)")
            let file = dir.sub("edge-\(until.timeIntervalSince1970).sql")
            try repo.restoreUntil(plan, database: "edge", to: file)
            let load = try runProcess("mariadb", ["--no-defaults", "-S", target.socket, "-u", "root"], inputFile: file)
            #expect(load.status == 0, "\(load.stderr)")
            #expect(try target.sql("SELECT id FROM edge.t ORDER BY id") == rows, "--until \(Timestamp.format(until))")
        }
    }

    /// Proves: a deleted segment is a gap that `logs check` names, and a restore across it stops
    /// (65) naming it and the latest moment it could reach; a restore before the gap still works.
    @Test func aDeletedSegmentIsAGap() throws {
        let server = try Self.mariadb.get()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try server.sql("CREATE DATABASE gap1; CREATE TABLE gap1.t (id INT PRIMARY KEY);")
        let dump = try backupDump(repo, server, dir)
        try server.sql("INSERT INTO gap1.t VALUES (1); FLUSH BINARY LOGS; INSERT INTO gap1.t VALUES (2); FLUSH BINARY LOGS; INSERT INTO gap1.t VALUES (3); FLUSH BINARY LOGS;")
        try pushAll(repo, server)
        let chain = try repo.logSegments(source: "mysql-binlog").filter { !$0.partial }
        let start = chain.firstIndex { $0.name == dump.binlogPosition?.file }!
        let missing = chain[start + 1]
        try repo.storage.delete(RepositoryLayout.logRecord("mysql-binlog", missing.objectName))
        try repo.storage.delete(RepositoryLayout.logData("mysql-binlog", missing.objectName))

        let report = try repo.checkLogs(source: "mysql-binlog")
        #expect(report.problems.contains { $0.contains(missing.name) }, "\(report.problems)")
        let until = Date().addingTimeInterval(5)
        let error = #expect(throws: LogError.self) { try repo.planBinlogReplay(snapshot: dump, logSource: "mysql-binlog", until: until) }
        guard case let .gap(_, gap, reachable, _)? = error else { Issue.record("expected a gap, got \(String(describing: error))"); return }
        #expect(gap.contains(missing.name))
        #expect(reachable == chain[start].lastEventAt)
        #expect(ExitStatus(for: error!) == .integrity)
    }

    /// The server's current binlog file and position (`SHOW MASTER STATUS`).
    func masterStatus(_ server: MariaDBServer) throws -> String {
        let fields = try server.sql("SHOW MASTER STATUS").split(separator: "\t")
        return "\(fields[0]):\(fields[1])"
    }

    /// Waits (up to a minute) until the archive holds the server's binlog up to its current
    /// position; fails the test if it never does.
    func waitUntilArchived(_ repo: Repository, _ server: MariaDBServer, _ what: String) throws {
        var position = ""
        for _ in 0..<600 {
            // Read each time: the server appends a binlog checkpoint event to a new file on its own.
            position = try masterStatus(server)
            if try repo.logSegments(source: "mysql-binlog").contains(where: { $0.endPosition == position }) { return }
            usleep(100_000)
        }
        Issue.record("\(what): the archive never reached \(position); it has \(try repo.logSegments(source: "mysql-binlog").map { "\($0.objectName) \($0.endPosition ?? "")" })")
    }

    /// Proves: `logs follow` archives the open binlog at its interval, a rotation, and carries on
    /// across a server restart (resuming by itself); the archived closed files are the server's
    /// files byte for byte and the chain has no gap.
    @Test func followAcrossARotationAndAServerRestart() throws {
        let server = try MariaDBServer.start(options: MariaDBServer.binlog)
        defer { server.stop() }
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let follower = BinlogFollower(repository: repo, source: "mysql-binlog",
                                      connection: .init(user: "root", socket: server.socket), spool: dir.sub("spool"), flushInterval: 0.5)
        follower.retryDelay = 0.5
        let failure = Locked<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do { try follower.run() } catch { failure.set("\(error)") }
            done.signal()
        }
        thread.start()
        try server.sql("CREATE DATABASE f1; CREATE TABLE f1.t (id INT PRIMARY KEY); INSERT INTO f1.t VALUES (1);")
        try waitUntilArchived(repo, server, "the open file")
        try server.sql("FLUSH BINARY LOGS; INSERT INTO f1.t VALUES (2);")
        try waitUntilArchived(repo, server, "after a rotation")
        try server.restart()
        try server.sql("INSERT INTO f1.t VALUES (3);")
        try waitUntilArchived(repo, server, "after a server restart")
        follower.stop()
        done.wait()
        #expect(failure.get() == nil)

        #expect(try repo.checkLogs(source: "mysql-binlog").problems == [])
        let chain = Repository.chainView(try repo.logSegments(source: "mysql-binlog"))
        let files = try binlogFiles(server)
        #expect(chain.map(\.name) == files.map { ($0 as NSString).lastPathComponent })
        for s in chain where !s.partial {
            #expect(s.sha256 == SHA256Hasher.digest(try readFile(server.dataDirectory + "/" + s.name)), "\(s.name)")
        }
        #expect(chain.dropLast().allSatisfy { !$0.partial }, "every file but the open one archived whole")
    }

    /// Proves: on a real server logging statements (`--binlog-format=STATEMENT`), a pushed
    /// binlog holding DML records how many changes were logged as statements and warns naming
    /// the file; a replay over it warns why it may be wrong; `logs follow` warns about the
    /// server's binlog_format at its start and about the file. A ROW-format file has no warning.
    @Test func statementBasedBinlogsAreDetected() throws {
        let server = try MariaDBServer.start(options: ["--log-bin=mysql-bin", "--binlog-format=STATEMENT", "--server-id=1"])
        defer { server.stop() }
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try server.sql("CREATE DATABASE st1; CREATE TABLE st1.t (id INT PRIMARY KEY); CREATE DATABASE st2;")
        let dump = try backupDump(repo, server, dir)
        try server.sql("INSERT INTO st1.t VALUES (1);", database: "st2")   // replayed for st2, not st1, by --database
        try server.sql("FLUSH BINARY LOGS;")
        try pushAll(repo, server)
        let segments = try repo.logSegments(source: "mysql-binlog")
        let flagged = try #require(segments.first { ($0.statementEvents ?? 0) > 0 }, "\(segments.map { "\($0.name) \($0.statementEvents ?? 0)" })")
        #expect(flagged.statementWarning?.contains(flagged.name) == true && flagged.statementWarning?.contains("binlog_format") == true)
        #expect(flagged.statementExample?.contains("INSERT") == true && flagged.statementExample?.contains("st2") == true, "\(flagged.statementExample ?? "")")
        let plan = try repo.planBinlogReplay(snapshot: dump, logSource: "mysql-binlog", until: Date().addingTimeInterval(5))
        #expect(plan.warnings.contains { $0.contains(flagged.name) && $0.contains("default database") }, "\(plan.warnings)")

        let followDir = TemporaryDirectory()
        let followRepo = try makeRepository(followDir)
        let follower = BinlogFollower(repository: followRepo, source: "mysql-binlog",
                                      connection: .init(user: "root", socket: server.socket), spool: dir.sub("spool"), flushInterval: 0.5)
        let warnings = Locked<[String]>([]), notes = Locked<[String]>([]), failure = Locked<String?>(nil)
        follower.warn = { w in warnings.set(warnings.get() + [w]) }
        follower.note = { n in notes.set(notes.get() + [n]) }
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do { try follower.run() } catch { failure.set("\(error)") }
            done.signal()
        }
        thread.start()
        try server.sql("INSERT INTO st1.t VALUES (2);")
        for _ in 0..<300 where warnings.get().count < 2 { usleep(100_000) }
        follower.stop()
        done.wait()
        #expect(warnings.get().contains { $0.contains("binlog_format=STATEMENT") }, "\(warnings.get())")
        #expect(failure.get() == nil)
        #expect(warnings.get().contains { $0.contains("mysql-bin.") && $0.contains("as SQL statements") }, "\(warnings.get()) \(notes.get())")
        #expect(follower.warningCount == warnings.get().count)
    }

    /// Proves the other side: a ROW-format server's binlogs carry no statement warning.
    @Test func rowBasedBinlogsHaveNoStatementWarning() throws {
        let server = try Self.mariadb.get()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try server.sql("CREATE DATABASE rw1; CREATE TABLE rw1.t (id INT PRIMARY KEY); INSERT INTO rw1.t VALUES (1); UPDATE rw1.t SET id = 2; DELETE FROM rw1.t; FLUSH BINARY LOGS;")
        try pushAll(repo, server)
        let segments = try repo.logSegments(source: "mysql-binlog")
        #expect(!segments.isEmpty && segments.allSatisfy { $0.statementEvents == nil && $0.statementWarning == nil }, "\(segments.map { "\($0.name) \($0.statementExample ?? "")" })")
    }
}
