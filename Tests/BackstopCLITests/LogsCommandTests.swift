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

    /// Proves: `prune --dry-run` lists archived segments with keep or remove and why, removing
    /// nothing; `prune` then removes the segment older than keep-logs and the oldest kept
    /// snapshot.
    @Test func pruneListsAndRemovesSegmentsByKeepLogs() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let old = "000000010000000000000001"
        try s.write("wal/" + old, String(repeating: "old wal\n", count: 1000))
        #expect(try CLI.run(["logs", "push", "--source", "pg-wal", s.sub("wal/" + old), "--repo", s.repo]).status == 0)
        // A snapshot 30 days in the future, and prune as of 31 days from now: the segment is
        // older than keep-logs and than the oldest kept snapshot.
        let later = Date().addingTimeInterval(30 * 86400)
        let stamp = ISO8601DateFormatter().string(from: later)
        try s.write("t/a", "a\n")
        #expect(try CLI.run(["backup", s.sub("t"), "--source", "t", "--time", stamp, "--repo", s.repo]).status == 0)
        try s.write("policy.yaml", "repository: \(s.repo)\njobs:\n  - source: t\n    kind: filesystem\n    paths: [\(s.sub("t"))]\nretention:\n  keep-last: 1\n  keep-logs: 7d\n")
        let now = ISO8601DateFormatter().string(from: later.addingTimeInterval(86400))
        let dry = try CLI.run(["prune", "--policy", s.sub("policy.yaml"), "--dry-run", "--time", now])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("remove  logs/pg-wal/\(old)"), "\(dry.stdout)")
        #expect(try CLI.run(["logs", "list", "--source", "pg-wal", "--repo", s.repo]).stdout.contains(old))
        let real = try CLI.run(["prune", "--policy", s.sub("policy.yaml"), "--time", now])
        #expect(real.status == 0, "\(real.stderr)")
        let listed = try CLI.run(["logs", "list", "--source", "pg-wal", "--repo", s.repo]).stdout
        #expect(!listed.contains(old), "\(listed)")
    }

    /// Proves: a dump taken with `--master-data=2 --gtid` keeps its binlog position in the
    /// manifest, and `show` prints it (text and JSON).
    @Test func showPrintsTheDumpsBinlogPosition() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let header = "-- SET GLOBAL gtid_slave_pos='0-1-41';\n\n-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000007', MASTER_LOG_POS=4242;\n\n"
        let dump = sampleDump(rows: 2).replacingOccurrences(of: "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\n",
                                                             with: "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\n" + header)
        try s.write("dump.sql", dump)
        let b = try CLI.run(["backup", "--stdin", "--source", "mysql-dump", "--repo", s.repo], stdinFile: s.sub("dump.sql"))
        #expect(b.status == 0, "\(b.stderr)")
        let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let text = try CLI.run(["show", id, "--repo", s.repo])
        #expect(text.stdout.contains("binlog      mysql-bin.000007:4242 (GTID 0-1-41)"), "\(text.stdout)")
        let parsed = try json(try CLI.run(["show", id, "--json", "--repo", s.repo]).stdout) as? [String: Any]
        let manifest = (parsed?["manifest"] as? [String: Any]) ?? parsed
        let position = manifest?["binlogPosition"] as? [String: Any]
        #expect(position?["file"] as? String == "mysql-bin.000007" && position?["position"] as? Int == 4242 && position?["gtid"] as? String == "0-1-41")
    }

    /// Proves: `verify --all` reads the archived segments too: one whose data object is gone
    /// fails the run (65) and is named.
    @Test func verifyAllReportsAMissingSegment() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        for n in ["000000010000000000000001", "000000010000000000000002"] {
            try s.write("wal/" + n, String(repeating: "wal \(n)\n", count: 500))
            #expect(try CLI.run(["logs", "push", "--source", "pg-wal", s.sub("wal/" + n), "--repo", s.repo]).status == 0)
        }
        #expect(try CLI.run(["verify", "--all", "--repo", s.repo]).status == 0)
        try FileManager.default.removeItem(atPath: s.repo + "/logs/pg-wal/000000010000000000000002.zst")
        let r = try CLI.run(["verify", "--all", "--repo", s.repo])
        #expect(r.status == 65 && r.stdout.contains("000000010000000000000002"), "\(r.stdout)\(r.stderr)")
    }
}
