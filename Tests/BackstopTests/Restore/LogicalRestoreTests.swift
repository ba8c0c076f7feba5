import Foundation
import Testing
@testable import Backstop

/// One database or table out of real dumps: the checked-in fixtures, and dumps of live servers
/// (tagged `liveServer`) that the real clients load back.
@Suite(.serialized) struct LogicalRestoreTests {
    /// This suite's own servers (live-server tests only): other suites create and drop databases concurrently.
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

    /// Proves: one database out of a several-database mariadb-dump is exactly its sections (the
    /// tables pass and the views pass) between the preamble and the trailer; a database the dump
    /// lacks, or an occupied target, is refused without writing anything.
    @Test func oneMariaDBDatabaseOutOfAFixture() throws {
        let dump = try Fixtures.mariadbDatabases()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let m = try backup(repo, dump, dir, name: "all.sql")
        let report = try LogicalRestore(repository: repo, manifest: m, database: "shop").run(to: dir.sub("shop.sql"))
        let restored = try readFile(dir.sub("shop.sql"))
        #expect(restored == expected(dump, m, ["shop"]))
        #expect(m.sections.filter { $0.name == "shop" }.count == 2, "tables pass and views pass")
        #expect(report.bytesWritten == Int64(restored.count))
        let text = String(decoding: restored, as: UTF8.self)
        #expect(text.contains("CREATE VIEW `big_orders`") && text.contains("TRIGGER shop.orders_audit") && !text.contains("`crm`"))

        // A database the dump does not hold: that error, listing the ones it does, and no file.
        let missing = #expect(throws: RestoreError.self) {
            try LogicalRestore(repository: repo, manifest: m, database: "nope").run(to: dir.sub("x.sql"))
        }
        guard case let .noSuchSection(id, "nope", "database", available)? = missing else {
            Issue.record("expected noSuchSection for nope, got \(String(describing: missing))")
            return
        }
        #expect(id == m.id && available.contains("shop") && available.contains("crm"))
        #expect(!FileManager.default.fileExists(atPath: dir.sub("x.sql")))
        // An existing non-empty file is not overwritten without --force, and stays as it was.
        let occupied = #expect(throws: RestoreError.self) {
            try LogicalRestore(repository: repo, manifest: m, database: "crm").run(to: dir.sub("shop.sql"))
        }
        guard case let .targetNotEmpty(path)? = occupied else {
            Issue.record("expected targetNotEmpty, got \(String(describing: occupied))")
            return
        }
        #expect(path == dir.sub("shop.sql"))
        #expect(try readFile(dir.sub("shop.sql")) == restored)
    }

    /// Proves: one table out of a plain pg_dump is its section between the preamble and the
    /// trailer (which holds the constraints).
    @Test func onePgDumpTableOutOfAFixture() throws {
        let dump = try Fixtures.pgShop()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let m = try backup(repo, dump, dir, name: "shop.sql")
        _ = try LogicalRestore(repository: repo, manifest: m, table: "orders").run(to: dir.sub("orders.sql"))
        let restored = try readFile(dir.sub("orders.sql"))
        #expect(restored == expected(dump, m, ["public.orders"]))
        let text = String(decoding: restored, as: UTF8.self)
        #expect(text.contains("COPY public.orders") && !text.contains("COPY public.customers") && !text.contains("COPY audit.log"))
    }

    /// Proves: of two pg_dumpall outputs around one added row, `diff` names exactly that
    /// database (the \restrict keys, new in every dump, change nothing), and restoring it gives
    /// its section between the preamble and the trailer.
    @Test func pgDumpallDiffAndOneDatabaseOutOfFixtures() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let before = try backup(repo, try Fixtures.pgDumpall(), dir, name: "before.sql")
        let changed = try Fixtures.pgDumpall("changed")
        let after = try backup(repo, changed, dir, name: "after.sql")
        let d = try SnapshotDiff.compute(repo, from: before.id, to: after.id)
        #expect(d.changed.map(\.path) == ["ledger"], "only the database written to changed: \(d)")
        #expect(d.added.isEmpty && d.removed.isEmpty)
        _ = try LogicalRestore(repository: repo, manifest: after, database: "ledger").run(to: dir.sub("ledger.sql"))
        #expect(try readFile(dir.sub("ledger.sql")) == expected(changed, after, ["ledger"]))
    }

    @Test(.tags(.liveServer), .needsLiveServer) func oneMariaDBDatabaseLoadsBackAlone() throws {
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
    }

    @Test(.tags(.liveServer), .needsLiveServer) func onePgDumpTableLoadsIntoAFreshDatabase() throws {
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

    @Test(.tags(.liveServer), .needsLiveServer) func pgDumpallDatabasesDiffAndRestore() throws {
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
        let payloadSize = reader.frames.reduce(Int64(0)) { $0 + Int64($1.compressedSize) }

        let report = try LogicalRestore(repository: repo, manifest: m, database: "app09").run(to: dir.sub("app09.sql"))
        #expect(try readFile(dir.sub("app09.sql")) == expected(dump, m, ["app09"]))
        #expect(report.bytesRead == seekTableBytes + neededBytes,
                "read \(report.bytesRead) bytes; the seek table and frames \(needed) are \(seekTableBytes + neededBytes)")
        #expect(report.bytesRead * 4 < payloadSize, "read \(report.bytesRead) of \(payloadSize) bytes")
    }
}

/// Restores to a pipe (`--to -`): verified before the first byte goes out, and a failing reader
/// is the target's fault, not the snapshot's. A real mariadb-dump (the fixture) whose database,
/// grown with generated rows, spans several frames.
extension LogicalRestoreTests {
    /// A sink that keeps what it got and can fail like a closed pipe after `failAfter` bytes.
    final class PipeSink: ByteSink {
        var bytes: [UInt8] = []
        var failAfter: Int?
        func write(_ b: UnsafeRawBufferPointer) throws {
            if let failAfter, bytes.count + b.count > failAfter { throw FileError.write(path: "standard output", errno: EPIPE) }
            bytes.append(contentsOf: b)
        }
        func markBoundary() throws {}
        func finish() throws {}
    }

    /// A dump whose `shop` section spans several frames (content-defined, about 1.25 MiB), stored in a fresh repository.
    func bigDumpSnapshot(_ dir: TemporaryDirectory) throws -> (Repository, Manifest, [UInt8], frames: [Int]) {
        let dump = try Fixtures.bigMariaDBShop(megabytes: 12)
        let repo = try makeRepository(dir)
        let m = try backup(repo, dump, dir, name: "big.sql")
        let section = try #require(m.sections.first { $0.kind == .database && $0.name == "shop" })
        let all = try repo.payloadFrames(m)
        let frames = all.indices.filter {
            all[$0].uncompressedOffset < section.offset + section.length && all[$0].uncompressedEnd > section.offset
        }
        #expect(frames.count >= 3, "the database spans several frames: \(frames)")
        return (repo, m, dump, frames)
    }

    func flipByte(inFrame index: Int, of m: Manifest, _ repo: Repository) throws {
        // Format 2: the frame's own object (`frames/ab/<id>`), changed in place.
        let path = try repo.framePath(m, index)
        chmod(path, 0o644)
        let f = try repo.payloadFrames(m)[index]
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        var byte: UInt8 = 0
        let at = off_t(f.compressedSize / 2)
        #expect(pread(fd, &byte, 1, at) == 1)
        byte ^= 0x5A
        #expect(pwrite(fd, &byte, 1, at) == 1)
    }

    // Item 13: with a corrupt frame in the middle of the database, nothing at all is written.
    @Test func aCorruptFrameMidDatabaseWritesNoByteToThePipe() throws {
        let dir = TemporaryDirectory()
        let (repo, m, dump, frames) = try bigDumpSnapshot(dir)
        let intact = PipeSink()
        let report = try LogicalRestore(repository: repo, manifest: m, database: "shop").stream(into: intact)
        #expect(intact.bytes == expected(dump, m, ["shop"]))
        #expect(report.bytesWritten == Int64(intact.bytes.count))

        try flipByte(inFrame: frames[frames.count / 2 + 1], of: m, repo)
        for database in ["shop", nil] {
            let sink = PipeSink()
            do {
                _ = try LogicalRestore(repository: repo, manifest: m, database: database).stream(into: sink)
                Issue.record("a corrupt frame must stop the restore")
            } catch RestoreError.corrupt(let id, let file, let location, _) {
                // Found decoding the frames, before any byte goes out: format 2 has no stored
                // payload file to hash, every frame is checked against its ID.
                #expect(id == m.id && file == m.payloadName, "\(file)")
                #expect(location.hasPrefix("frame "), "\(location)")
            }
            #expect(sink.bytes.isEmpty, "\(sink.bytes.count) bytes reached the pipe before the corruption was found")
        }
    }

    // Item 13: a frame that changes after the verifying pass is caught before its bytes go out,
    // and the error says how much went out and that no fallback follows.
    @Test func aFrameChangedBetweenThePassesIsCaught() throws {
        let dir = TemporaryDirectory()
        let (repo, m, dump, frames) = try bigDumpSnapshot(dir)
        let victim = frames[frames.count - 1]
        var restore = LogicalRestore(repository: repo, manifest: m, database: "shop")
        restore.afterVerifying = { try self.flipByte(inFrame: victim, of: m, repo) }
        let sink = PipeSink()
        do {
            _ = try restore.stream(into: sink)
            Issue.record("the changed frame must stop the restore")
        } catch let error as RestoreError {
            guard case let .corruptWhileStreaming(_, _, location, _, written) = error else { Issue.record("\(error)"); return }
            #expect(location == "frame \(victim)")
            #expect(written == Int64(sink.bytes.count) && written > 0)
            #expect(!error.allowsFallback && error.isIntegrityFailure && error.exitStatus == .integrity)
        }
        let all = expected(dump, m, ["shop"])
        #expect(sink.bytes.count < all.count && Array(all.prefix(sink.bytes.count)) == sink.bytes, "only verified bytes, in order")
    }

    // Item 1: a closed pipe is the target's failure (74), never recorded against the snapshot.
    @Test func aClosedPipeIsATargetFailureAndRecordsNothing() throws {
        let dir = TemporaryDirectory()
        let (repo, m, _, _) = try bigDumpSnapshot(dir)
        let sink = PipeSink()
        sink.failAfter = 100_000
        do {
            _ = try LogicalRestore(repository: repo, manifest: m, database: "shop").stream(into: sink)
            Issue.record("the closed pipe must stop the restore")
        } catch let error as RestoreError {
            guard case .targetWrite = error else { Issue.record("\(error)"); return }
            #expect(error.exitStatus == .ioError && !error.isIntegrityFailure)
        }
        #expect(try repo.catalog.select(SelectionCriteria(point: .latest, source: "dump")).chosen?.id == m.id, "still selectable")
    }
}
