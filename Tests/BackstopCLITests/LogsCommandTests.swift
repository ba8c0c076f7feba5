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

/// `logs push` streams: a log file far larger than the memory bound is archived with a peak RSS
/// well below its size (DESIGN: 64 MiB), and comes back byte for byte.
@Suite struct LogsPushMemoryTests {
    static let size = 200 << 20

    /// Runs `backstop ARGS…` under a Python wrapper that reports the child's peak RSS (the
    /// kernel's ru_maxrss of the waited-for child, in KiB): the status, stderr, and MiB.
    func runMeasured(_ arguments: [String]) throws -> (CLI.Result, Int) {
        let wrapper = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            + "sys.stderr.write('maxrss=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
        let r = try CLI.run(arguments, prefix: ["/usr/bin/env", "python3", "-c", wrapper])
        let line = try #require(r.stderr.split(separator: "\n").last { $0.hasPrefix("maxrss=") }, "\(r.stderr)")
        return (r, (Int(line.dropFirst(7)) ?? Int.max) / 1024)
    }

    /// Writes `count` bytes of a fast pseudo-random stream to `fd`.
    func writeRandom(_ fd: Int32, _ count: Int, seed: UInt64) {
        var state = seed
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var left = count
        while left > 0 {
            buffer.withUnsafeMutableBytes { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for i in 0..<words.count {
                    state &+= 0x9E37_79B9_7F4A_7C15
                    var z = state
                    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                    words[i] = z ^ (z >> 31)
                }
            }
            let n = min(left, buffer.count)
            _ = buffer.withUnsafeBytes { write(fd, $0.baseAddress, n) }
            left -= n
        }
    }

    /// Proves: a 200 MiB WAL file (incompressible) is pushed with a peak RSS under 64 MiB, and
    /// `logs get` returns the same bytes. Before streaming, push read it whole (and compressed it
    /// into a second buffer as large): over 400 MiB.
    @Test func aLargeWALSegmentIsPushedInBoundedMemory() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let name = "000000010000000000000001"
        let fd = open(s.sub(name), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        writeRandom(fd, Self.size, seed: 7)
        close(fd)
        let (push, mib) = try runMeasured(["logs", "push", "--source", "pg-wal", s.sub(name), "--repo", s.repo])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(mib < 64, "peak RSS \(mib) MiB pushing a \(Self.size >> 20) MiB file")
        #expect(try CLI.run(["logs", "get", "--source", "pg-wal", name, s.sub("back"), "--repo", s.repo]).status == 0)
        let sums = try sh("sha256sum '\(s.sub(name))' '\(s.sub("back"))' | cut -d' ' -f1 | uniq | wc -l")
        #expect(sums.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "logs get returns other bytes than were pushed")
    }

    /// Proves: a 200 MiB binlog (a format description, 64 KiB row events, a rotate) is read for
    /// its record and archived with a peak RSS under 64 MiB; the record has its end position and
    /// the next file.
    @Test func aLargeBinlogIsPushedInBoundedMemory() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let name = "big-bin.000001"
        let fd = open(s.sub(name), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var position: UInt32 = 4
        func event(_ type: UInt8, _ body: [UInt8]) {
            let size = UInt32(19 + body.count)
            position += size
            var header: [UInt8] = []
            for v in [UInt32(1_700_000_000)] { header += withUnsafeBytes(of: v.littleEndian, Array.init) }
            header.append(type)
            for v in [UInt32(1), size, position] { header += withUnsafeBytes(of: v.littleEndian, Array.init) }
            header += [0, 0]
            _ = (header + body).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
        _ = [UInt8]([0xFE, 0x62, 0x69, 0x6E]).withUnsafeBytes { write(fd, $0.baseAddress, 4) }
        event(15, [4, 0] + Array("10.11.6-MariaDB".utf8) + [UInt8](repeating: 0, count: 35) + [0, 0, 0, 0, 19])
        let body = 64 << 10
        for i in 0..<(Self.size / body) {
            var header = [UInt8](); header += withUnsafeBytes(of: UInt32(1_700_000_000).littleEndian, Array.init)
            header.append(23)   // WRITE_ROWS_EVENT_V1: a row event, its body random here
            let size = UInt32(19 + body)
            position += size
            for v in [UInt32(1), size, position] { header += withUnsafeBytes(of: v.littleEndian, Array.init) }
            header += [0, 0]
            _ = header.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            writeRandom(fd, body, seed: UInt64(i))
        }
        event(4, withUnsafeBytes(of: UInt64(4).littleEndian, Array.init) + Array("big-bin.000002".utf8))
        close(fd)
        let (push, mib) = try runMeasured(["logs", "push", "--source", "mysql-binlog", s.sub(name), "--repo", s.repo])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(mib < 64, "peak RSS \(mib) MiB pushing a \(Self.size >> 20) MiB binlog")
        let list = try CLI.run(["logs", "list", "--source", "mysql-binlog", "--json", "--repo", s.repo])
        let segment = try #require(((try json(list.stdout) as? [String: Any])?["segments"] as? [[String: Any]])?.first, "\(list.stdout)")
        #expect(segment["endPosition"] as? String == "\(name):\(position)" && segment["nextFile"] as? String == "big-bin.000002", "\(segment)")
        #expect(segment["partial"] as? Bool == false)
    }
}

/// A binlog file built in test code: the magic, a format description without checksums, the
/// given events (type, body), and a rotate to `next`.
func craftedBinlog(_ events: [(UInt8, [UInt8])], next: String, at time: UInt32 = 1_700_000_000) -> [UInt8] {
    var file: [UInt8] = [0xFE, 0x62, 0x69, 0x6E]
    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    let description: [UInt8] = [4, 0] + Array("10.11.6-MariaDB".utf8) + [UInt8](repeating: 0, count: 35) + [0, 0, 0, 0, 19]
    let rotate = le(UInt64(4)) + Array(next.utf8)
    for (type, body) in [(UInt8(15), description)] + events + [(UInt8(4), rotate)] {
        let size = UInt32(19 + body.count)
        file += le(time) + [type] + le(UInt32(1)) + le(size) + le(UInt32(file.count) + size) + [0, 0] + body
    }
    return file
}

/// A Query event's body: thread id, execution time, default database, error code, no status
/// variables, then the database (NUL-terminated) and the statement.
func queryEvent(database: String, _ sql: String) -> (UInt8, [UInt8]) {
    var body = [UInt8](repeating: 0, count: 8) + [UInt8(database.utf8.count), 0, 0, 0, 0]
    body += Array(database.utf8) + [0] + Array(sql.utf8)
    return (2, body)
}

@Suite struct StatementBinlogCommandTests {
    /// Proves: `logs push` of a binlog holding DML logged as a statement (a Query event, as
    /// binlog_format STATEMENT or MIXED writes) archives it but exits 3 with a warning naming
    /// the file and why; DDL in Query events (as ROW format writes) is no warning.
    @Test func pushWarnsAboutStatementLoggedChanges() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let statement = craftedBinlog([queryEvent(database: "app08", "BEGIN"), queryEvent(database: "app08", "/* app */ INSERT INTO app07.t VALUES (1)")], next: "st-bin.000002")
        FileManager.default.createFile(atPath: s.sub("st-bin.000001"), contents: Data(statement))
        let r = try CLI.run(["logs", "push", "--source", "mysql-binlog", s.sub("st-bin.000001"), "--repo", s.repo])
        #expect(r.status == 3, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("warning") && r.stderr.contains(s.sub("st-bin.000001")) && r.stderr.contains("binlog_format")
                && r.stderr.contains("INSERT") && r.stderr.contains("app08"), "\(r.stderr)")
        #expect(r.stdout.contains("archived st-bin.000001"), "\(r.stdout)")

        let ddl = craftedBinlog([queryEvent(database: "app07", "CREATE TABLE t (id INT)")], next: "st-bin.000003")
        FileManager.default.createFile(atPath: s.sub("st-bin.000002"), contents: Data(ddl))
        let clean = try CLI.run(["logs", "push", "--source", "mysql-binlog", s.sub("st-bin.000002"), "--repo", s.repo])
        #expect(clean.status == 0 && !clean.stderr.contains("warning"), "\(clean.stderr)")
    }
}
