import Foundation
import Testing
@testable import Backstop

/// One database or table out of real dumps, loaded back by the real clients.
@Suite(.serialized) struct LogicalRestoreTests {
    /// This suite's own servers: other suites create and drop databases concurrently.
    static let postgres = Result { try PostgresServer.start() }
    static let mariadb = Result { try MariaDBServer.start() }

    func backup(_ repo: Repository, _ dump: [UInt8], _ dir: TemporaryDirectory, name: String) throws -> Manifest {
        try writeFile(dir.sub(name), dump)
        let fd = open(dir.sub(name), O_RDONLY)
        defer { close(fd) }
        return try LogicalSnapshotWriter(input: .fileDescriptor(fd), options: BackupOptions(source: "dump")).write(to: repo)
    }

    func expected(_ dump: [UInt8], _ m: Manifest, _ names: Set<String>) -> [UInt8] {
        m.sections.filter { $0.kind == .preamble || $0.kind == .trailer || names.contains($0.name) }
            .flatMap { dump[Int($0.offset)..<Int($0.offset + $0.length)] }
    }

    @Test func oneMariaDBDatabaseLoadsBackAlone() throws {
        let db = try Self.mariadb.get()
        try db.sql("""
            DROP DATABASE IF EXISTS rst_a; DROP DATABASE IF EXISTS rst_b;
            CREATE DATABASE rst_a; CREATE TABLE rst_a.t (id INT PRIMARY KEY, v TEXT); INSERT INTO rst_a.t VALUES (1,'a'),(2,'b');
            CREATE VIEW rst_a.v AS SELECT id FROM rst_a.t;
            CREATE DATABASE rst_b; CREATE TABLE rst_b.t (id INT PRIMARY KEY); INSERT INTO rst_b.t VALUES (9);
            """)
        let dump = try db.dumpAll()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let m = try backup(repo, dump, dir, name: "all.sql")
        let report = try LogicalRestore(repository: repo, manifest: m, database: "rst_a").run(to: dir.sub("rst_a.sql"))
        let restored = try readFile(dir.sub("rst_a.sql"))
        #expect(restored == expected(dump, m, ["rst_a"]))
        #expect(m.sections.filter { $0.name == "rst_a" }.count == 2, "tables pass and views pass")
        #expect(report.bytesWritten == Int64(restored.count))

        // Changes after the dump, then the single-database file loads back into the server.
        try db.sql("INSERT INTO rst_a.t VALUES (3,'c'); INSERT INTO rst_b.t VALUES (10);")
        let load = try runProcess("mariadb", ["--no-defaults", "-S", db.socket, "-u", "root"], inputFile: dir.sub("rst_a.sql"))
        #expect(load.status == 0, "\(load.stderr)")
        #expect(try db.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM rst_a.t") == "1,2\n", "rst_a back at the dump")
        #expect(try db.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM rst_b.t") == "9,10\n", "rst_b untouched")
        #expect(try db.sql("SELECT COUNT(*) FROM rst_a.v") == "2\n", "the view came back")

        // A database the dump does not hold: that error, listing the ones it does, and no file.
        let missing = #expect(throws: RestoreError.self) {
            try LogicalRestore(repository: repo, manifest: m, database: "nope").run(to: dir.sub("x.sql"))
        }
        guard case let .noSuchSection(id, "nope", "database", available)? = missing else {
            Issue.record("expected noSuchSection for nope, got \(String(describing: missing))")
            return
        }
        #expect(id == m.id && available.contains("rst_a") && available.contains("rst_b"))
        #expect(!FileManager.default.fileExists(atPath: dir.sub("x.sql")))
        // An existing non-empty file is not overwritten without --force, and stays as it was.
        let occupied = #expect(throws: RestoreError.self) {
            try LogicalRestore(repository: repo, manifest: m, database: "rst_b").run(to: dir.sub("rst_a.sql"))
        }
        guard case let .targetNotEmpty(path)? = occupied else {
            Issue.record("expected targetNotEmpty, got \(String(describing: occupied))")
            return
        }
        #expect(path == dir.sub("rst_a.sql"))
        #expect(try readFile(dir.sub("rst_a.sql")) == restored)
    }

    @Test func onePgDumpTableLoadsIntoAFreshDatabase() throws {
        let pg = try Self.postgres.get()
        _ = try? pg.sql("DROP DATABASE rst_shop")
        _ = try? pg.sql("DROP DATABASE rst_scratch")
        try pg.sql("CREATE DATABASE rst_shop")
        try pg.sql("CREATE DATABASE rst_scratch")
        try pg.sql("""
            CREATE TABLE customers (id serial PRIMARY KEY, name text);
            CREATE TABLE orders (id serial PRIMARY KEY, customer int, total numeric);
            INSERT INTO customers (name) VALUES ('Ada'), ('Grace');
            INSERT INTO orders (customer, total) VALUES (1, 9.99), (2, 100), (2, 5);
            """, database: "rst_shop")
        let dump = try pg.dump("rst_shop")
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let m = try backup(repo, dump, dir, name: "shop.sql")
        _ = try LogicalRestore(repository: repo, manifest: m, table: "orders").run(to: dir.sub("orders.sql"))
        #expect(try readFile(dir.sub("orders.sql")) == expected(dump, m, ["public.orders"]))
        let load = try runProcess("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.socketDirectory, "-p", "\(pg.port)", "-U", "postgres",
                                           "-d", "rst_scratch", "-f", dir.sub("orders.sql")])
        #expect(load.status == 0, "\(load.stderr)")
        #expect(try pg.sql("SELECT count(*), sum(total) FROM orders", database: "rst_scratch") == "3|114.99\n")
        #expect(try pg.sql("SELECT count(*) FROM customers", database: "rst_scratch") == "0\n", "other tables: schema only")
    }

    @Test func pgDumpallDatabasesDiffAndRestore() throws {
        let pg = try Self.postgres.get()
        for name in ["rst_one", "rst_two"] {
            _ = try? pg.sql("DROP DATABASE \(name)")
            try pg.sql("CREATE DATABASE \(name)")
            try pg.sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);", database: name)
        }
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let before = try backup(repo, try pg.dumpall(), dir, name: "before.sql")
        try pg.sql("INSERT INTO t VALUES (2);", database: "rst_two")
        let after = try backup(repo, try pg.dumpall(), dir, name: "after.sql")
        let d = try SnapshotDiff.compute(repo, from: before.id, to: after.id)
        #expect(d.changed.map(\.path) == ["rst_two"], "only the database written to changed: \(d)")
        #expect(d.added.isEmpty && d.removed.isEmpty)

        _ = try LogicalRestore(repository: repo, manifest: after, database: "rst_two").run(to: dir.sub("two.sql"))
        try pg.sql("DROP DATABASE rst_two")
        let load = try runProcess("psql", ["-X", "-q", "-h", pg.socketDirectory, "-p", "\(pg.port)", "-U", "postgres", "-d", "postgres",
                                           "-f", dir.sub("two.sql")])
        #expect(load.status == 0, "\(load.stderr)")
        #expect(try pg.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t", database: "rst_two") == "1,2\n")
    }

    /// Proves: restoring one database of a dump cut into many frames reads the seek table and
    /// the frames that hold the preamble, that database and the trailer, and not one byte of any
    /// other frame (bytes counted by the file source, not computed from offsets).
    @Test func oneDatabaseReadsOnlyItsFrames() throws {
        var gen = SeededBytes(seed: 41)
        var dump = Array("-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n--\n-- Host: localhost    Database: \n".utf8)
        dump += Array("/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\n".utf8)
        for n in 1...16 {
            let db = String(format: "app%02d", n)
            dump += Array("--\n-- Current Database: `\(db)`\n--\n\nCREATE DATABASE `\(db)`;\nUSE `\(db)`;\n".utf8)
            for _ in 0..<30 {    // ~1.1 MB of rows, 36 KB a line, random enough to stay large compressed
                dump += Array("INSERT INTO t VALUES ('".utf8) + gen.bytes(36_000).map { 97 + $0 % 26 } + Array("');\n".utf8)
            }
        }
        dump += Array("/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n-- Dump completed on 2024-03-24 22:00:00\n".utf8)
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let m = try backup(repo, dump, dir, name: "many.sql")
        #expect(m.sections.filter { $0.kind == .database }.count == 16)

        let reader = try SnapshotReader(repository: repo, manifest: m).payload()
        let seekTableBytes = reader.source.bytesRead
        #expect(reader.frames.count >= 12, "a dump of many frames: \(reader.frames.count)")
        let chosen = m.sections.filter { $0.kind != .database || $0.name == "app09" }
        let needed = reader.frames.indices.filter { i in
            let f = reader.frames[i]
            return chosen.contains { $0.offset < f.uncompressedEnd && $0.offset + $0.length > f.uncompressedOffset }
        }
        let neededBytes = needed.reduce(Int64(0)) { $0 + Int64(reader.frames[$1].compressedSize) }
        let payloadSize = m.files.first { $0.name == m.payloadName }!.size

        let report = try LogicalRestore(repository: repo, manifest: m, database: "app09").run(to: dir.sub("app09.sql"))
        #expect(try readFile(dir.sub("app09.sql")) == expected(dump, m, ["app09"]))
        #expect(report.bytesRead == seekTableBytes + neededBytes,
                "read \(report.bytesRead) bytes; the seek table and frames \(needed) are \(seekTableBytes + neededBytes)")
        #expect(report.bytesRead * 4 < payloadSize, "read \(report.bytesRead) of \(payloadSize) bytes")
    }
}
