import Foundation
import Testing

/// `backstop backup --tar-stdin` / `--tar-command`, end to end, against GNU tar.
@Suite struct TarStreamCommandTests {
    /// The snapshot folders in a local repository (none after a refused backup).
    func snapshotFolders(_ repo: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: repo + "/snapshots")) ?? []).filter { !$0.hasPrefix(".") }
    }

    func makeTree(_ dir: Scratch) throws -> String {
        let src = dir.sub("src")
        try sh("""
            set -e
            mkdir -p '\(src)/base/1' '\(src)/global' '\(src)/pg_wal'
            printf '15\\n' > '\(src)/PG_VERSION'
            head -c 3000000 /dev/urandom > '\(src)/base/1/16384'
            printf 'small' > '\(src)/global/pg_control'
            chmod 600 '\(src)/global/pg_control'
            setfattr -n user.backstop -v kept '\(src)/global/pg_control'
            ln '\(src)/global/pg_control' '\(src)/global/linked'
            ln -s ../PG_VERSION '\(src)/global/version-link'
            touch -d '2024-03-25 01:00:00.123456789' '\(src)/base/1/16384'
            """)
        return src
    }

    /// Proves: a tar stream from `--tar-command` and from `--tar-stdin` restores to exactly what
    /// GNU tar extracts from the same stream (content, modes, links, mtimes), and `verify` passes.
    @Test func tarStreamRoundTrip() throws {
        let dir = Scratch()
        let repo = dir.sub("repo")
        try CLI.run(["init", "--repo", repo])
        let src = try makeTree(dir)
        try sh("tar --format=pax --xattrs -C '\(src)' -cf '\(dir.sub("stream.tar"))' .")
        try sh("mkdir '\(dir.sub("ref"))' && tar -C '\(dir.sub("ref"))' -xpf '\(dir.sub("stream.tar"))'")
        let viaCommand = try CLI.run(["backup", "--tar-command", "tar --format=pax --xattrs -C '\(src)' -cf - .", "--source", "data", "--repo", repo])
        #expect(viaCommand.status == 0, "\(viaCommand.stderr)")
        let viaStdin = try CLI.run(["backup", "--tar-stdin", "--source", "data", "--repo", repo], stdinFile: dir.sub("stream.tar"))
        #expect(viaStdin.status == 0, "\(viaStdin.stderr)")
        for (name, id) in [("command", viaCommand.stdout), ("stdin", viaStdin.stdout)] {
            let id = id.trimmingCharacters(in: .whitespacesAndNewlines)
            let out = dir.sub("out-\(name)")
            let restore = try CLI.run(["restore", id, "--to", out, "--repo", repo])
            #expect(restore.status == 0, "\(restore.stderr)")
            let difference = try sh("diff -r --no-dereference '\(dir.sub("ref"))' '\(out)' 2>&1; true")
            #expect(difference.isEmpty, "\(name): \(difference)")
            // Names, types, modes, links and mtimes, as GNU tar lists them.
            let listing = { (path: String) in
                try sh("cd '\(path)' && find . -mindepth 1 -printf '%p %y %m %l %T@ %n\\n' | sort")
            }
            #expect(try listing(out) == listing(dir.sub("ref")), "\(name)")
            #expect(try sh("getfattr --only-values -n user.backstop '\(out)/global/pg_control'") == "kept", "\(name): extended attribute")
            let verify = try CLI.run(["verify", id, "--repo", repo])
            #expect(verify.status == 0, "\(verify.stderr)")
        }
        // Single-file restore and export work on such a snapshot too.
        let id = viaStdin.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let one = try CLI.run(["restore", id, "--include", "global/pg_control", "--to", dir.sub("one"), "--repo", repo])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(try sh("cat '\(dir.sub("one/global/pg_control"))'") == "small")
        let export = try CLI.run(["export", id, "--to", dir.sub("export.tar.zst"), "--repo", repo])
        #expect(export.status == 0, "\(export.stderr)")
        let exported = try sh("zstd -dc '\(dir.sub("export.tar.zst"))' | tar -tf - | sort")
        let original = try sh("tar -tf '\(dir.sub("stream.tar"))' | sed -e 's|^\\./||' -e 's|/$||' | grep -v '^\\.\\?$' | sort")
        #expect(exported.split(separator: "\n").map { $0.hasSuffix("/") ? String($0.dropLast()) : String($0) }.sorted()
                == original.split(separator: "\n").map(String.init).sorted(), "\(exported)\n\(original)")
    }

    /// Proves: a tar command that exits non-zero stores nothing (exit 1, its stderr in the error).
    @Test func failingTarCommandStoresNothing() throws {
        let dir = Scratch()
        let repo = dir.sub("repo")
        try CLI.run(["init", "--repo", repo])
        let src = try makeTree(dir)
        let result = try CLI.run(["backup", "--tar-command", "tar -C '\(src)' -cf - .; echo 'server closed the connection' >&2; exit 2",
                                  "--source", "pg-base", "--repo", repo])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("status 2") && result.stderr.contains("server closed the connection"), "\(result.stderr)")
        #expect(snapshotFolders(repo).isEmpty)
        let empty = try CLI.run(["backup", "--tar-command", "exit 0", "--source", "pg-base", "--repo", repo])
        #expect(empty.status == 65, "\(empty.stderr)")
        #expect(snapshotFolders(repo).isEmpty)
    }

    /// Proves: an absolute path in the stream (GNU tar -P) is refused with 65, naming the entry;
    /// nothing is stored.
    @Test func absolutePathInTheStreamIsRefused() throws {
        let dir = Scratch()
        let repo = dir.sub("repo")
        try CLI.run(["init", "--repo", repo])
        let src = try makeTree(dir)
        let result = try CLI.run(["backup", "--tar-command", "tar -P -cf - '\(src)/PG_VERSION'", "--source", "s", "--repo", repo])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("\(src)/PG_VERSION") && result.stderr.contains("absolute"), "\(result.stderr)")
        #expect(snapshotFolders(repo).isEmpty)
        let flags = try CLI.run(["backup", "--tar-stdin", "--exclude", "*.pid", "--source", "s", "--repo", repo])
        #expect(flags.status == 64, "\(flags.stderr)")
    }

    /// Proves: a stream holding backup_label has its fields in `show --json` and in `show`.
    @Test func backupLabelFieldsInShow() throws {
        let dir = Scratch()
        let repo = dir.sub("repo")
        try CLI.run(["init", "--repo", repo])
        let src = try makeTree(dir)
        try sh("""
            printf 'START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\\nCHECKPOINT LOCATION: 0/5000060\\nBACKUP METHOD: streamed\\nBACKUP FROM: primary\\nSTART TIME: 2026-11-28 03:20:00 UTC\\nLABEL: pg_basebackup base backup\\nSTART TIMELINE: 1\\n' > '\(src)/backup_label'
            printf '{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [], "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/5000028", "End-LSN": "0/5000138"}]}' > '\(src)/backup_manifest'
            """)
        let backup = try CLI.run(["backup", "--tar-command", "tar -C '\(src)' -cf - .", "--source", "pg-base", "--repo", repo])
        #expect(backup.status == 0, "\(backup.stderr)")
        let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let show = try CLI.run(["show", id, "--json", "--repo", repo])
        #expect(show.status == 0, "\(show.stderr)")
        let object = try #require(try json(show.stdout) as? [String: Any])
        let manifest = (object["manifest"] as? [String: Any]) ?? object
        let pg = try #require(manifest["postgresBackup"] as? [String: Any], "\(show.stdout)")
        #expect(pg["startLSN"] as? String == "0/5000028")
        #expect(pg["startWALFile"] as? String == "000000010000000000000005")
        #expect(pg["checkpointLSN"] as? String == "0/5000060")
        #expect(pg["startTimeline"] as? Int == 1)
        #expect(pg["label"] as? String == "pg_basebackup base backup")
        #expect(pg["startTime"] as? String == "2026-11-28 03:20:00 UTC")
        #expect(pg["stopLSN"] as? String == "0/5000138")
        let text = try CLI.run(["show", id, "--repo", repo])
        #expect(text.stdout.contains("0/5000028") && text.stdout.contains("0/5000138") && text.stdout.contains("000000010000000000000005"), "\(text.stdout)")
    }
}
