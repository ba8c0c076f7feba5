import Foundation
import Testing
@testable import Backstop

/// pg_dump's custom (`-Fc`) and tar (`-Ft`) archives, made by the real pg_dump (the checked-in
/// fixtures, and a live server for loading tables back with the real pg_restore), checked by the
/// scanners and restored table by table.
@Suite struct PgArchiveTests {
    /// This suite's own server (live-server tests only): other suites create and drop databases concurrently.
    static let postgres = Result { try PostgresServer.start() }

    /// How the archive is made: `-Fc` to a pipe (no data offsets), `-Fc -f FILE` (pg_dump seeks
    /// back and writes the offsets), `-Ft`.
    enum Kind: String, CaseIterable, CustomStringConvertible {
        case customPipe, customFile, tar
        var format: DumpFormat { self == .tar ? .pgdumpTar : .pgdumpCustom }
        var description: String { rawValue }
        /// The fixture made this way (scripts/make-fixtures.sh): the `shop` database, or the
        /// same after one table changed and one was added (`-Fc` to a pipe and `-Ft` only).
        func fixture(changed: Bool = false) throws -> [UInt8] {
            switch (self, changed) {
            case (.customPipe, false): try Fixtures.bytes("pg-shop-custom-pipe.dump")
            case (.customFile, false): try Fixtures.bytes("pg-shop-custom-file.dump")
            case (.tar, false): try Fixtures.bytes("pg-shop.tar")
            case (.customPipe, true): try Fixtures.bytes("pg-shop-changed-custom-pipe.dump")
            case (.tar, true): try Fixtures.bytes("pg-shop-changed.tar")
            case (.customFile, true): preconditionFailure("no changed -Fc -f fixture")
            }
        }
    }

    static func dump(_ database: String, _ kind: Kind) throws -> [UInt8] {
        let pg = try postgres.get()
        let connection = ["-h", pg.socketDirectory, "-p", "\(pg.port)", "-U", "postgres"]
        switch kind {
        case .customPipe, .tar:
            let r = try runProcess("pg_dump", connection + [kind == .tar ? "-Ft" : "-Fc", database])
            if r.status != 0 { throw ServerError(description: "pg_dump failed: \(r.stderr)") }
            return r.stdout
        case .customFile:
            let dir = TemporaryDirectory("pgdump")
            let r = try runProcess("pg_dump", connection + ["-Fc", "-f", dir.sub("dump"), database])
            if r.status != 0 { throw ServerError(description: "pg_dump failed: \(r.stderr)") }
            return try readFile(dir.sub("dump"))
        }
    }

    /// A database with three tables in two schemas, a foreign key and a large object; `bigRows`
    /// rows of about 100 bytes in `public.big`.
    static func makeShop(_ name: String, bigRows: Int = 0) throws -> PostgresServer {
        let pg = try postgres.get()
        _ = try? pg.sql("DROP DATABASE \(name)")
        try pg.sql("CREATE DATABASE \(name)")
        try pg.sql("""
            CREATE TABLE customers (id serial PRIMARY KEY, name text);
            CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customers(id), total numeric);
            CREATE SCHEMA audit; CREATE TABLE audit.log (at timestamptz, what text);
            INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 500) g;
            INSERT INTO orders (customer, total) SELECT 1 + g % 500, g * 1.25 FROM generate_series(1, 700) g;
            INSERT INTO audit.log VALUES ('2024-03-24 22:00:00+00', 'upgrade');
            SELECT lo_from_bytea(0, 'a large object');
            """ + (bigRows > 0 ? """
            CREATE TABLE big (id int, a text, b text, c text);
            INSERT INTO big SELECT g, md5(g::text), md5((g * 7)::text), md5((g * 13)::text) FROM generate_series(1, \(bigRows)) g;
            """ : ""), database: name)
        return pg
    }

    static func scan(_ dump: [UInt8], format: DumpFormat, chunk: Int = 1 << 20) throws -> ([Section], MemorySink) {
        let sink = MemorySink()
        let scanner = try #require(DumpScanner.scanner(for: format, sink: sink))
        var i = 0
        while i < dump.count {
            let n = min(chunk, dump.count - i)
            try dump[i..<(i + n)].withUnsafeBytes { try scanner.consume($0) }
            i += n
        }
        return (try scanner.finish(), sink)
    }

    func backup(_ repo: Repository, _ bytes: [UInt8], _ dir: TemporaryDirectory, name: String,
                format: DumpFormatChoice = .auto) throws -> Manifest {
        try writeFile(dir.sub(name), bytes)
        let fd = open(dir.sub(name), O_RDONLY)
        defer { close(fd) }
        return try LogicalSnapshotWriter(input: .fileDescriptor(fd), format: format, options: BackupOptions(source: "pg")).write(to: repo)
    }

    func isDamaged(_ error: any Error) -> Bool {
        if case BackupError.damagedArchive = error { return true }
        return false
    }

    @Test(arguments: Kind.allCases)
    func oneSectionPerTable(kind: Kind) throws {
        let dump = try kind.fixture()
        #expect(DumpFormatDetector.detect(Array(dump.prefix(DumpFormatDetector.window))) == kind.format)
        let (sections, sink) = try Self.scan(dump, format: kind.format)
        #expect(sink.bytes == dump, "the stream passes unchanged")
        var offset: Int64 = 0
        for s in sections {
            #expect(s.offset == offset, "\(s.name) starts where the previous section ended")
            #expect(s.sha256 == SHA256Hasher.digest(Array(dump[Int(s.offset)..<Int(s.offset + s.length)])), "\(s.name) digest")
            offset += s.length
        }
        #expect(offset == Int64(dump.count))
        #expect(sections.first?.kind == .preamble)
        #expect(sections.filter { $0.kind == .table }.map(\.name).sorted() == ["audit.log", "public.customers", "public.orders"])
        #expect(sections.filter { $0.kind == .other }.count == 1, "the large object")
        #expect(kind.format != .pgdumpTar || sections.last?.kind == .trailer, "tar: restore.sql and the end marker")
        for s in sections.dropFirst() {
            #expect(sink.boundaries.contains(Int(s.offset)), "a frame boundary where \(s.name) starts")
        }
        for s in sections where s.kind == .table {
            #expect(s.contentSHA256 != nil && s.contentSHA256 != s.sha256, "\(s.name): content digest without the block header")
        }

        // Chunking does not change what is found.
        for chunk in [1, 7, 4096] {
            let (pieces, again) = try Self.scan(dump, format: kind.format, chunk: chunk)
            #expect(pieces == sections, "chunks of \(chunk) bytes")
            #expect(again.bytes == dump)
        }
    }

    /// A copy cut anywhere (inside the header, the table of contents, a table's data, at the start
    /// of a later table's data, one byte short), or with bytes after its end, is refused.
    @Test(arguments: Kind.allCases)
    func truncatedArchivesAreRefused(kind: Kind) throws {
        let dump = try kind.fixture()
        let (sections, _) = try Self.scan(dump, format: kind.format)
        let preamble = try #require(sections.first)
        let customers = try #require(sections.first { $0.name == "public.customers" })
        let orders = try #require(sections.first { $0.name == "public.orders" })
        let cuts: [(String, Int)] = [
            ("inside the header", 20),
            ("inside the table of contents", Int(preamble.length) / 2),
            ("inside a table's data", Int(customers.offset + customers.length / 2)),
            ("at the start of a table's data", Int(orders.offset)),
            ("one byte short", dump.count - 1),
        ]
        for (what, cut) in cuts {
            do {
                _ = try Self.scan(Array(dump.prefix(cut)), format: kind.format)
                Issue.record("a copy cut \(what) (\(cut) of \(dump.count) bytes) was accepted")
            } catch {
                #expect(isDamaged(error), "cut \(what): \(error)")
            }
        }
        #expect(throws: BackupError.self, "bytes after the end") { try Self.scan(dump + [0x42], format: kind.format) }
        #expect(throws: BackupError.self, "empty") { try Self.scan([], format: kind.format) }
    }

    /// The writer refuses a truncated archive recognised by `--format auto`, and commits nothing.
    @Test func writerRefusesATruncatedArchiveAndCommitsNothing() throws {
        let dump = try Kind.customPipe.fixture()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        do {
            _ = try backup(repo, Array(dump.prefix(dump.count * 2 / 3)), dir, name: "cut.dump")
            Issue.record("a truncated custom-format archive was stored")
        } catch {
            #expect(isDamaged(error), "\(error)")
            #expect((error as? ExitStatusProviding)?.exitStatus == .integrity)
        }
        #expect(try repo.snapshotFolders().isEmpty, "nothing committed")
        let whole = try backup(repo, dump, dir, name: "whole.dump")
        #expect(whole.dumpFormat == .pgdumpCustom)
    }

    /// `--command`: a dump command that fails after a partial archive is reported as failing (its
    /// status explains the truncation); an archive that goes wrong while the command still writes
    /// stops the command instead of waiting for it.
    @Test func commandsThatFailOrWriteGarbage() throws {
        let dump = try Kind.customPipe.fixture()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try writeFile(dir.sub("cut.dump"), Array(dump.prefix(dump.count / 2)))
        try writeFile(dir.sub("whole.dump"), dump)
        let options = BackupOptions(source: "pg")
        #expect {
            try LogicalSnapshotWriter(input: .command("cat '\(dir.sub("cut.dump"))'; exit 3"), options: options).write(to: repo)
        } throws: { error in
            if case BackupError.commandFailed(_, 3, _) = error { return true }
            return false
        }
        // 20 MB after the archive: the command blocks on the full pipe unless it is stopped.
        #expect {
            try LogicalSnapshotWriter(input: .command("cat '\(dir.sub("whole.dump"))'; head -c 20000000 /dev/zero"), options: options).write(to: repo)
        } throws: { isDamaged($0) }
        #expect(try repo.snapshotFolders().isEmpty, "nothing committed")
    }

    @Test func unknownArchiveVersionsAreRefused() throws {
        for kind in [Kind.customPipe, .tar] {
            var dump = try kind.fixture()
            let minor = (kind == .tar ? 512 : 0) + 6
            #expect((12...16).contains(Int(dump[minor])), "pg_dump \(dump[minor]) writes a version we read")
            dump[minor] = 17
            do {
                _ = try Self.scan(dump, format: kind.format)
                Issue.record("\(kind): archive version 1.17 was accepted")
            } catch BackupError.unsupportedArchive(_, let reason) {
                #expect(reason.contains("1.17"))
            }
        }
    }

    /// `restore --table` writes an archive that the real pg_restore loads (whole, and with `-t`
    /// from a pipe), reading only the frames of the table of contents and that table. Its cases
    /// share one server's databases, so they run one at a time.
    @Test(.tags(.liveServer), .needsLiveServer, .serialized, arguments: Kind.allCases)
    func oneTableLoadsWithPgRestore(kind: Kind) throws {
        let pg = try Self.makeShop("pga_restore", bigRows: 90_000)
        let source = try pg.sql("SELECT string_agg(id || ':' || customer || ':' || total, ',' ORDER BY id) FROM orders", database: "pga_restore")
        let dump = try Self.dump("pga_restore", kind)
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let m = try backup(repo, dump, dir, name: "shop.dump")
        #expect(m.dumpFormat == kind.format)
        #expect(try repo.payloadFrames(m).count > 3, "the dump spans several frames")

        let report = try LogicalRestore(repository: repo, manifest: m, table: "orders").run(to: dir.sub("orders.dump"))
        #expect(report.bytesRead < m.bytesStored / 2, "read \(report.bytesRead) of \(m.bytesStored) stored bytes: not public.big's frames")

        let listing = try runProcess("pg_restore", ["-l", dir.sub("orders.dump")])
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(listing.stdoutText.contains("TABLE DATA public orders"))
        for other in ["TABLE DATA public big", "TABLE DATA public customers", "BLOBS"] {
            #expect(!listing.stdoutText.contains(other), "pg_restore -l passes over \(other)")
        }

        for (database, arguments, input) in [("pga_scratch", [dir.sub("orders.dump")], nil), ("pga_scratch_t", ["-t", "orders"], dir.sub("orders.dump"))] {
            _ = try? pg.sql("DROP DATABASE \(database)")
            try pg.sql("CREATE DATABASE \(database)")
            let load = try runProcess("pg_restore", ["-h", pg.socketDirectory, "-p", "\(pg.port)", "-U", "postgres", "-d", database] + arguments,
                                      inputFile: input)
            // Whole: the foreign key to the empty customers table fails, as with a plain dump's table.
            #expect(!load.stderr.contains("could not find"), "\(load.stderr)")
            #expect(!load.stderr.contains("unexpected end of file"), "\(load.stderr)")
            #expect(try pg.sql("SELECT string_agg(id || ':' || customer || ':' || total, ',' ORDER BY id) FROM orders", database: database) == source,
                    "\(database): orders as dumped")
        }
        #expect(try pg.sql("SELECT count(*) FROM big", database: "pga_scratch") == "0\n", "other tables: schema only")
        #expect(try pg.sql("SELECT count(*) FROM customers", database: "pga_scratch") == "0\n")
        #expect(try pg.sql("SELECT count(*) FROM pg_largeobject", database: "pga_scratch") == "0\n", "no large objects' data")

        // The whole snapshot restores byte for byte.
        _ = try LogicalRestore(repository: repo, manifest: m).run(to: dir.sub("all.dump"))
        #expect(try readFile(dir.sub("all.dump")) == dump)

        // One database per pg_dump archive: --database does not apply.
        #expect {
            try LogicalRestore(repository: repo, manifest: m, database: "pga_restore").run(to: dir.sub("db.dump"))
        } throws: { error in
            if case RestoreError.wrongKind = error { return true }
            return false
        }
    }

    /// Two dumps where one table changed: `diff` names exactly that table.
    @Test(arguments: [Kind.customPipe, .tar])
    func diffNamesTheChangedTable(kind: Kind) throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        // The fixtures: the second made after `UPDATE audit.log …; CREATE TABLE added …`.
        let before = try backup(repo, try kind.fixture(), dir, name: "before.dump")
        let after = try backup(repo, try kind.fixture(changed: true), dir, name: "after.dump")
        let d = try SnapshotDiff.compute(repo, from: before.id, to: after.id)
        #expect(d.changed.map(\.path) == ["audit.log"], "\(d)")
        #expect(d.added == ["public.added"])
        #expect(d.removed.isEmpty)
        #expect(d.unchanged == 2)
    }

    /// Review finding 11: a table restore whose preamble's table of contents cannot be read
    /// (here: a repository whose manifest and SHA256SUMS were rewritten so that the preamble
    /// section ends inside it, with a matching digest) is refused before anything reaches
    /// stdout (the verifying pass runs the table-of-contents filter too), and a file restore,
    /// which writes only its staging file, never says bytes went out.
    @Test(arguments: [Kind.customPipe, .tar])
    func aTableOfContentsErrorIsFoundBeforeAnyByteGoesOut(kind: Kind) throws {
        let dump = try kind.fixture()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        var m = try backup(repo, dump, dir, name: "in")
        let p = try #require(m.sections.firstIndex { $0.kind == .preamble })
        m.sections[p].length /= 2
        let start = Int(m.sections[p].offset)
        m.sections[p].sha256 = SHA256Hasher.digest(Array(dump[start..<(start + Int(m.sections[p].length))]))
        let folder = repo.snapshotDirectory(m.id)
        try writeFile(folder + "/manifest.json", Array(try Timestamp.jsonEncoder().encode(m)) + [0x0A])
        let sums = try shell("sha256sum $(ls | grep -v SHA256SUMS)", directory: folder)
        try writeFile(folder + "/SHA256SUMS", Array(sums.stdoutText.utf8))

        let sink = MemorySink()
        #expect {
            _ = try LogicalRestore(repository: repo, manifest: m, table: "orders").stream(into: sink)
        } throws: { error in
            guard case let RestoreError.corrupt(_, _, location, reason) = error else { return false }
            return location == "section \(m.sections[p].name)" && reason.contains("table of contents")
        }
        #expect(sink.bytes.count == 0, "bytes reached the stream")

        let target = dir.sub("orders.dump")
        #expect {
            _ = try LogicalRestore(repository: repo, manifest: m, table: "orders").run(to: target)
        } throws: { error in
            if case RestoreError.corrupt = error { return true }
            return false
        }
        #expect(!FileSystem.exists(target))
    }
}
