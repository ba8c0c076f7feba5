import Foundation
import Testing

/// `backstop logs` and `restore --until` end to end, without a server: exit codes and messages.
@Suite struct LogsCommandTests {
    /// Proves: PostgreSQL's archive_command may push one WAL segment twice (exit 0, nothing
    /// changes); another file under the same name is refused with 65 naming it, and
    /// restore_command (`logs get`) still returns the original bytes.
    @Test func walPushTwiceIsIdempotentAndOtherBytesAreRefused() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let name = "000000010000000000000001"
        try s.write("pg_wal/" + name, String(repeating: "wal page one\n", count: 4000))
        let first = try CLI.run(["logs", "push", "--source", "pg-wal", s.sub("pg_wal/" + name), "--repo", s.repo])
        #expect(first.status == 0, "\(first.stderr)")
        let again = try CLI.run(["logs", "push", "--source", "pg-wal", s.sub("pg_wal/" + name), "--repo", s.repo])
        #expect(again.status == 0 && again.stdout.contains("already archived"), "\(again.stdout)\(again.stderr)")
        try s.write("other/" + name, String(repeating: "wal page two\n", count: 4000))
        let conflict = try CLI.run(["logs", "push", "--source", "pg-wal", s.sub("other/" + name), "--repo", s.repo])
        #expect(conflict.status == 65 && conflict.stderr.contains(name) && conflict.stderr.contains("nothing was replaced"), "\(conflict.stderr)")
        let get = try CLI.run(["logs", "get", "--source", "pg-wal", name, s.sub("restored"), "--repo", s.repo])
        #expect(get.status == 0, "\(get.stderr)")
        #expect(FileManager.default.contents(atPath: s.sub("restored")) == FileManager.default.contents(atPath: s.sub("pg_wal/" + name)))
        let missing = try CLI.run(["logs", "get", "--source", "pg-wal", "000000010000000000000009", s.sub("nine"), "--repo", s.repo])
        #expect(missing.status == 66 && !FileManager.default.fileExists(atPath: s.sub("nine")))
        let check = try CLI.run(["logs", "check", "--source", "pg-wal", "--repo", s.repo])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }

    /// Proves: `restore --until` a time before the first dump is 66 with the explanation, and
    /// writes nothing.
    @Test func untilBeforeAnyDumpIsNoMatch() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("dump.sql", sampleDump(rows: 2))
        #expect(try CLI.run(["backup", "--stdin", "--source", "mysql-dump", "--time", "2024-03-01T02:00:00Z", "--repo", s.repo], stdinFile: s.sub("dump.sql")).status == 0)
        let r = try CLI.run(["restore", "--source", "mysql-dump", "--database", "crm", "--until", "2024-02-01T00:00:00Z", "--to", "-", "--repo", s.repo])
        #expect(r.status == 66, "\(r.stderr)")
        #expect(r.stdout.isEmpty && r.stderr.contains("mysql-dump"))
        // A dump without a binlog position cannot be brought forward: 66, saying how to take one.
        let noPosition = try CLI.run(["restore", "--source", "mysql-dump", "--until", "2024-03-02T00:00:00Z", "--to", "-", "--repo", s.repo])
        #expect(noPosition.status == 66 && noPosition.stderr.contains("--master-data=2"), "\(noPosition.stderr)")
        #expect(noPosition.stdout.isEmpty)
    }
}
