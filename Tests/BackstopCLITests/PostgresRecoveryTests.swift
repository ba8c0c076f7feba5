import Foundation
import Testing

/// PostgreSQL point-in-time recovery end to end: WAL archived by `backstop logs push` as the
/// server's archive_command, a base backup stored as a filesystem snapshot, more writes, then
/// `restore --source pg-base --until T` and a real server replaying the archive to T.
@Suite(.serialized, .tags(.liveServer), .needsLiveServer) struct PostgresRecoveryTests {
    /// Runs a shell command as the postgres user (when the tests run as root), with a TMPDIR it
    /// can write (scripts/test.sh points TMPDIR at a folder of the test user's).
    func asPostgres(_ command: String) throws -> String {
        let quoted = "'export TMPDIR=/tmp; " + command.replacingOccurrences(of: "'", with: "'\\''") + "'"
        return try sh(getuid() == 0 ? "runuser -u postgres -- bash -c \(quoted)" : "bash -c \(quoted)")
    }

    /// Proves: a restore to T between two transactions brings back the earlier one and not the
    /// later one, through WAL the server archived with `logs push` and fetched with `logs get`;
    /// a T before the first base backup is 66 with the explanation. Both ways of taking the base
    /// backup: a plain directory (`pg_basebackup -Fp`, then `backup DIR`) and a tar stream
    /// (`backup --tar-command 'pg_basebackup -D - -Ft -X none'`, whose backup_label positions
    /// are recorded).
    @Test(arguments: [false, true]) func pitrToAMomentBetweenTwoTransactions(tarStream: Bool) throws {
        if TestTier.isFast { throw ShellError(command: "initdb", status: 1, stderr: "a PostgreSQL server in the fast tier (BACKSTOP_FAST=1): tag the test .liveServer, .needsLiveServer") }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted(by: >).first(where: { FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") }) else {
            throw ShellError(command: "initdb", status: 127, stderr: "PostgreSQL server binaries not found; run scripts/test.sh, which installs them")
        }
        let bin = "/usr/lib/postgresql/\(version)/bin"
        let dir = try sh("mktemp -d /tmp/backstop-pitr-pg-XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer {
            for data in ["data", "restored/base", "restored"] { _ = try? asPostgres("\(bin)/pg_ctl -D \(dir)/\(data) -m immediate -w stop >/dev/null 2>&1") }
            try? FileManager.default.removeItem(atPath: dir)
        }
        if getuid() == 0 { try sh("chown postgres '\(dir)'") }
        let backstop = "'\(CLI.binary)'"
        let repo = dir + "/repo"
        let psql = "psql -X -q -v ON_ERROR_STOP=1 -h \(dir) -p 5432 -U postgres -At"
        try asPostgres("\(backstop) init --repo \(repo) >/dev/null")
        try asPostgres("\(bin)/initdb -D \(dir)/data -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null")
        try asPostgres("""
            cat >> \(dir)/data/postgresql.conf <<'EOF'
            wal_level = replica
            archive_mode = on
            archive_command = '\(CLI.binary) logs push --quiet --repo \(repo) --source pg-wal %p'
            EOF
            """)
        try asPostgres(DatabaseProcess.closeInherited + "\(bin)/pg_ctl -D \(dir)/data -l \(dir)/server.log -w -o \"-k \(dir) -c listen_addresses='' -p 5432 -c fsync=off\" start >/dev/null")
        try asPostgres("\(psql) -d postgres -c 'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);'")
        if tarStream {
            let id = try asPostgres("\(backstop) backup --tar-command '\(bin)/pg_basebackup -h \(dir) -p 5432 -U postgres -D - -Ft -X none -c fast' --source pg-base --repo \(repo)")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let shown = try asPostgres("\(backstop) show \(id) --json --repo \(repo)")
            let object = try #require(try json(shown) as? [String: Any])
            let pg = try #require(((object["manifest"] as? [String: Any]) ?? object)["postgresBackup"] as? [String: Any], "\(shown)")
            #expect((pg["startLSN"] as? String)?.contains("/") == true, "\(pg)")
            #expect((pg["startWALFile"] as? String)?.count == 24, "\(pg)")
            #expect(pg["checkpointLSN"] is String && pg["startTimeline"] as? Int == 1 && pg["label"] is String && pg["startTime"] is String, "\(pg)")
            #expect(pg["stopLSN"] is String, "\(pg)")
        } else {
            try asPostgres("\(bin)/pg_basebackup -h \(dir) -p 5432 -U postgres -D \(dir)/base -Fp -X none -c fast")
            try asPostgres("\(backstop) backup \(dir)/base --source pg-base --repo \(repo) >/dev/null")
        }
        try asPostgres("\(psql) -d postgres -c 'INSERT INTO t VALUES (2);'")
        // T: a whole second after the second transaction, a second before the third.
        let now = Date().timeIntervalSince1970
        usleep(useconds_t(((now + 1).rounded(.down) - now) * 1_000_000) + 100_000)
        let until = Date(timeIntervalSince1970: (now + 1).rounded(.down))
        sleep(1)
        try asPostgres("\(psql) -d postgres -c 'INSERT INTO t VALUES (3);'")
        let last = try asPostgres("\(psql) -d postgres -c 'SELECT pg_walfile_name(pg_switch_wal())'").trimmingCharacters(in: .whitespacesAndNewlines)
        var archived = ""
        for _ in 0..<600 {
            archived = try asPostgres("\(psql) -d postgres -c \"SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver\"").trimmingCharacters(in: .whitespacesAndNewlines)
            if archived >= last { break }
            usleep(100_000)
        }
        #expect(archived >= last, "the server archived up to \(archived), not \(last): \((try? sh("tail -n 20 \(dir)/server.log")) ?? "")")
        try asPostgres("\(bin)/pg_ctl -D \(dir)/data -m fast -w stop >/dev/null")

        let stamp = ISO8601DateFormatter().string(from: until)
        let early = try CLI.run(["restore", "--source", "pg-base", "--until", "2000-01-01T00:00:00Z", "--to", dir + "/early", "--repo", repo])
        #expect(early.status == 66 && early.stderr.contains("pg-base"), "\(early.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/early"))
        let restore = try CLI.run(["restore", "--source", "pg-base", "--until", stamp, "--to", dir + "/restored", "--repo", repo],
                                  prefix: getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : [])
        #expect(restore.status == 0, "\(restore.stderr)")
        let restoredData = tarStream ? "\(dir)/restored" : "\(dir)/restored/base"
        try asPostgres("chmod 700 \(restoredData)")
        try asPostgres(DatabaseProcess.closeInherited + "\(bin)/pg_ctl -D \(restoredData) -l \(dir)/restored.log -w -o \"-k \(dir) -c listen_addresses='' -p 5432 -c fsync=off -c archive_mode=off\" start >/dev/null")
        var inRecovery = "t"
        for _ in 0..<600 {
            inRecovery = (try? asPostgres("\(psql) -d postgres -c 'SELECT pg_is_in_recovery()'").trimmingCharacters(in: .whitespacesAndNewlines)) ?? "t"
            if inRecovery == "f" { break }
            usleep(100_000)
        }
        #expect(inRecovery == "f", "\((try? sh("tail -n 30 \(dir)/restored.log")) ?? "")")
        let rows = try asPostgres("\(psql) -d postgres -c 'SELECT id FROM t ORDER BY id'")
        #expect(rows == "1\n2\n", "\(rows)\n\((try? sh("tail -n 30 \(dir)/restored.log")) ?? "")")
    }
}

enum DatabaseProcess {
    /// Closes inherited descriptors above 2, so a server started from a test never holds the test's pipes.
    static let closeInherited = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; "#
}
