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
        #expect(report.framesRead <= report.framesTotal)

        // Changes after the dump, then the single-database file loads back into the server.
        try db.sql("INSERT INTO rst_a.t VALUES (3,'c'); INSERT INTO rst_b.t VALUES (10);")
        let load = try runProcess("mariadb", ["--no-defaults", "-S", db.socket, "-u", "root"], inputFile: dir.sub("rst_a.sql"))
        #expect(load.status == 0, "\(load.stderr)")
        #expect(try db.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM rst_a.t") == "1,2\n", "rst_a back at the dump")
        #expect(try db.sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM rst_b.t") == "9,10\n", "rst_b untouched")
        #expect(try db.sql("SELECT COUNT(*) FROM rst_a.v") == "2\n", "the view came back")

        #expect(throws: RestoreError.self) { try LogicalRestore(repository: repo, manifest: m, database: "nope").run(to: dir.sub("x.sql")) }
        #expect(throws: RestoreError.self) { try LogicalRestore(repository: repo, manifest: m, database: "rst_b").run(to: dir.sub("rst_a.sql")) }
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
}
