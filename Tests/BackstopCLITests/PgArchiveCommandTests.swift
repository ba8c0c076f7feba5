import Foundation
import Testing

/// End to end: `pg_dump -Fc | backstop backup --stdin` refuses a truncated archive with exit 65
/// and keeps nothing, stores an intact one, and `restore --table` gives pg_restore an archive it
/// reads to the end. The dumps come from a real PostgreSQL cluster started for this suite.
@Suite(.serialized) struct PgArchiveCommandTests {
    /// A throwaway cluster on a Unix socket in its own directory (readable by the postgres user
    /// when the tests run as root), stopped when the suite's test ends.
    final class Cluster {
        let directory: String
        let run: String
        let bin: String

        init() throws {
            if TestTier.isFast { throw ShellError(command: "initdb", status: 1, stderr: "a PostgreSQL server in the fast tier (BACKSTOP_FAST=1): tag the test .liveServer, .needsLiveServer") }
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
            guard let version = versions.sorted(by: >).first(where: { FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") }) else {
                throw ShellError(command: "initdb", status: 127, stderr: "PostgreSQL server binaries not found; run scripts/test.sh, which installs them")
            }
            bin = "/usr/lib/postgresql/\(version)/bin"
            directory = try sh("mktemp -d /tmp/backstop-cli-pg-XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
            run = getuid() == 0 ? "runuser -u postgres --" : ""
            if getuid() == 0 { try sh("chown postgres '\(directory)'") }
            try sh("\(run) \(bin)/initdb -D \(directory)/data -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null")
            try sh("for fd in /proc/$$/fd/*; do n=${fd##*/}; [ \"$n\" -gt 2 ] && eval \"exec $n>&-\"; done 2>/dev/null; "
                + "\(run) \(bin)/pg_ctl -D \(directory)/data -l \(directory)/server.log -w -o \"-k \(directory) -c listen_addresses='' -p 5432 -c fsync=off\" start >/dev/null")
        }

        var connection: String { "-h \(directory) -p 5432 -U postgres" }

        deinit {
            _ = try? sh("\(run) \(bin)/pg_ctl -D \(directory)/data -m immediate -w stop >/dev/null 2>&1")
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// `mariadb-dump --compact` writes no header and no completion marker: `--format auto` stores
    /// such a stream as raw, and says so (a truncated copy would pass), unless `--format raw`.
    @Test func aStreamWithoutADumpHeaderIsStoredAsRawWithANote() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let compact = Array("""
            /*!40101 SET @saved_cs_client     = @@character_set_client */;
            /*!40101 SET character_set_client = utf8mb4 */;
            CREATE TABLE `orders` (
              `id` int(11) NOT NULL,
              PRIMARY KEY (`id`)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
            /*!40101 SET character_set_client = @saved_cs_client */;
            INSERT INTO `orders` VALUES (1),(2);

            """.utf8)
        let auto = try CLI.run(["backup", "--stdin", "--source", "compact", "--repo", s.repo], stdinBytes: compact)
        #expect(auto.status == 0, "\(auto.stderr)")
        #expect(auto.stderr.contains("stored as raw") && auto.stderr.contains("truncated copy would not be detected")
                && auto.stderr.contains("--compact") && auto.stderr.contains("--format"), "\(auto.stderr)")
        let raw = try CLI.run(["backup", "--stdin", "--source", "compact", "--format", "raw", "--repo", s.repo], stdinBytes: compact)
        #expect(raw.status == 0, "\(raw.stderr)")
        #expect(!raw.stderr.contains("stored as raw"), "named raw: no note: \(raw.stderr)")
    }

    @Test(.tags(.liveServer), .needsLiveServer) func aTruncatedCustomFormatDumpIsRefusedWithExit65() throws {
        let pg = try Cluster()
        let s = Scratch()
        try sh("""
            psql -X -q -v ON_ERROR_STOP=1 \(pg.connection) -d postgres -c 'CREATE DATABASE shop' &&
            psql -X -q -v ON_ERROR_STOP=1 \(pg.connection) -d shop \
              -c 'CREATE TABLE customers (id int PRIMARY KEY, name text)' \
              -c 'CREATE TABLE orders (id int PRIMARY KEY, total numeric)' \
              -c "INSERT INTO customers SELECT g, md5(g::text) FROM generate_series(1, 20000) g" \
              -c 'INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 3000) g' &&
            pg_dump -Fc \(pg.connection) shop | cat > '\(s.sub("shop.dump"))' &&
            head -c 60000 '\(s.sub("shop.dump"))' > '\(s.sub("cut.dump"))'
            """)
        #expect(try FileManager.default.attributesOfItem(atPath: s.sub("shop.dump"))[.size] as! Int > 60000, "the cut is inside the archive")
        // The independent oracle: pg_restore reading the whole archive fails on the cut copy.
        #expect(throws: ShellError.self) { try sh("pg_restore -f /dev/null '\(s.sub("cut.dump"))'") }

        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let cut = try CLI.run(["backup", "--stdin", "--source", "pg", "--repo", s.repo], stdinFile: s.sub("cut.dump"))
        #expect(cut.status == 65, "\(cut.stderr)")
        #expect(cut.stderr.contains("pgdump-custom") && cut.stderr.contains("truncated") && cut.stderr.contains("nothing was stored"), "\(cut.stderr)")
        let list = try CLI.run(["list", "--json", "--repo", s.repo])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("\"pg\"") == false, "nothing committed: \(list.stdout)")

        let whole = try CLI.run(["backup", "--stdin", "--source", "pg", "--repo", s.repo], stdinFile: s.sub("shop.dump"))
        #expect(whole.status == 0, "\(whole.stderr)")
        let id = whole.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let show = try CLI.run(["show", id, "--json", "--repo", s.repo])
        #expect(show.stdout.contains("\"pgdump-custom\""), "\(show.stdout)")

        let restore = try CLI.run(["restore", id, "--table", "orders", "--to", s.sub("orders.dump"), "--repo", s.repo])
        #expect(restore.status == 0, "\(restore.stderr)")
        let listing = try sh("pg_restore -f - '\(s.sub("orders.dump"))'")
        #expect(listing.contains("COPY public.orders") && !listing.contains("COPY public.customers"), "only orders' data")

        let database = try CLI.run(["restore", id, "--database", "shop", "--to", s.sub("db.dump"), "--repo", s.repo])
        #expect(database.status == 64, "--database does not apply to a pg_dump archive: \(database.stderr)")
    }
}
