import Foundation
import Testing

/// Logical backups fed what a failing cron job feeds them, and flags that do not fit.
@Suite struct BackupInputTests {
    func initRepo(_ s: Scratch) throws {
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
    }

    func snapshotCount(_ s: Scratch) throws -> Int {
        let list = try CLI.run(["list", "--json", "--repo", s.repo])
        #expect(list.status == 0, "\(list.stderr)")
        // An array today; an object with "snapshots" once lists are wrapped.
        let value = try json(list.stdout)
        return try #require((value as? [Any]) ?? ((value as? [String: Any])?["snapshots"] as? [Any])).count
    }

    // Item 2: `failing-dump | backstop backup --stdin` stores nothing, in every format.
    @Test func anEmptyStreamIsRefusedInEveryFormat() throws {
        let s = Scratch()
        try initRepo(s)
        for format in [[], ["--format", "raw"], ["--format", "mysqldump"], ["--format", "pgdump"]] {
            let r = try CLI.run(["backup", "--stdin", "--source", "mysql-dump", "--repo", s.repo] + format, stdinBytes: [])
            #expect(r.status == 65, "\(format): \(r.stderr)")
            #expect(r.stderr.contains("standard input is empty") && r.stderr.contains("nothing was stored"), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        let quiet = try CLI.run(["backup", "--command", "true", "--source", "mysql-dump", "--repo", s.repo])
        #expect(quiet.status == 65, "\(quiet.stderr)")
        let failing = try CLI.run(["backup", "--command", "echo 'access denied' >&2; exit 2", "--source", "mysql-dump", "--repo", s.repo])
        #expect(failing.status == 1 && failing.stderr.contains("exited with status 2"), "the failure, not the emptiness: \(failing.stderr)")
        #expect(try snapshotCount(s) == 0)
        let latest = try CLI.run(["select", "--latest", "--source", "mysql-dump", "--repo", s.repo])
        #expect(latest.status == 66)
    }

    // Item 2: a stream of another format than the source's snapshots (an error message where
    // the dump should be) is refused under --format auto, and accepted when the format is named.
    @Test func aChangedFormatIsRefusedUnlessNamed() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("dump.sql", sampleDump())
        #expect(try CLI.run(["backup", "--stdin", "--source", "mysql-dump", "--repo", s.repo], stdinFile: s.sub("dump.sql")).status == 0)
        let error = Array("mysqldump: Got error: 2002: \"Can't connect to local server through socket\" when trying to connect\n".utf8)
        let r = try CLI.run(["backup", "--stdin", "--source", "mysql-dump", "--repo", s.repo], stdinBytes: error)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("looks like raw") && r.stderr.contains("is mysqldump") && r.stderr.contains("--format raw"), "\(r.stderr)")
        #expect(try snapshotCount(s) == 1)
        let named = try CLI.run(["backup", "--stdin", "--source", "mysql-dump", "--format", "raw", "--repo", s.repo], stdinBytes: error)
        #expect(named.status == 0, "\(named.stderr)")
        // Another source has its own history.
        let other = try CLI.run(["backup", "--stdin", "--source", "notes", "--repo", s.repo], stdinBytes: Array("plain text\n".utf8))
        #expect(other.status == 0, "\(other.stderr)")
        #expect(try snapshotCount(s) == 3)
    }

    // Item 2: SQL without a dump header (mariadb-dump --compact) is stored as raw, with a warning
    // that says a truncated copy would not be detected and points to --format.
    @Test func compactSQLIsStoredAsRawWithAWarning() throws {
        let s = Scratch()
        try initRepo(s)
        let compact = "/*!40101 SET @saved_cs_client     = @@character_set_client */;\n/*!40101 SET character_set_client = utf8mb4 */;\n"
            + "CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n);\n/*!40101 SET character_set_client = @saved_cs_client */;\nINSERT INTO `t` VALUES (1),(2);\n"
        let r = try CLI.run(["backup", "--stdin", "--source", "app", "--repo", s.repo], stdinBytes: Array(compact.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning:") && r.stderr.contains("--compact") && r.stderr.contains("truncated") && r.stderr.contains("--format"), "\(r.stderr)")
        let plain = try CLI.run(["backup", "--stdin", "--source", "blob", "--repo", s.repo], stdinBytes: Array("just some bytes\n".utf8))
        #expect(plain.status == 0 && !plain.stderr.contains("warning:"), "\(plain.stderr)")
        let named = try CLI.run(["backup", "--stdin", "--source", "app2", "--format", "raw", "--repo", s.repo], stdinBytes: Array(compact.utf8))
        #expect(named.status == 0 && !named.stderr.contains("warning:"), "--format raw is a knowing choice: \(named.stderr)")
    }

    // Item 2: the same warning from a policy's job (cron's stderr), not only from `backup`.
    @Test func compactSQLFromAPolicyJobWarns() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("compact.sql", "/*!40101 SET character_set_client = utf8mb4 */;\nCREATE TABLE `t` (`id` int);\nINSERT INTO `t` VALUES (1);\n")
        try s.write("policy.yaml", """
            repository: \(s.repo)
            jobs:
              - source: app
                kind: logical
                command: cat \(s.sub("compact.sql"))
            verify:
              after-backup: none
            """)
        let r = try CLI.run(["run", s.sub("policy.yaml")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("app:") && r.stderr.contains("--compact") && r.stderr.contains("truncated"), "\(r.stderr)")
    }

    // Item 6: flags of the other kind of backup are usage errors naming the flag and the kind.
    @Test func flagsThatDoNotApplyAreUsageErrors() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/f", "x\n")
        let format = try CLI.run(["backup", s.sub("data"), "--source", "d", "--format", "pgdump", "--repo", s.repo])
        #expect(format.status == 64)
        #expect(format.stderr.contains("--format pgdump does not apply to a filesystem snapshot"), "\(format.stderr)")
        let exclude = try CLI.run(["backup", "--stdin", "--source", "d", "--exclude", "*.tmp", "--repo", s.repo], stdinBytes: Array(sampleDump().utf8))
        #expect(exclude.status == 64)
        #expect(exclude.stderr.contains("--exclude *.tmp does not apply to a logical snapshot"), "\(exclude.stderr)")
        #expect(try snapshotCount(s) == 0)
    }
}
