import Foundation
import Testing

/// End-to-end tests of `init`, `backup`, `list`, `show` and `catalog rebuild`: the built binary,
/// its stdout, stderr and exit code.
@Suite struct BackupCommandTests {
    func initRepo(_ s: Scratch) throws {
        let r = try CLI.run(["init", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func helpListsTheExitCodes() throws {
        let r = try CLI.run(["--help"])
        #expect(r.status == 0)
        for code in ["0", "3", "64", "65", "66", "73", "74", "75", "130"] {
            #expect(r.stdout.contains("\n  \(code) "), "exit code \(code) in --help")
        }
    }

    @Test func aFilesystemSnapshotIsListedAndShown() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/a.txt", "alpha\n")
        try s.write("data/sub/b.txt", "beta\n", mode: 0o600)
        let backup = try CLI.run(["backup", s.sub("data"), "--source", "app-data", "--tag", "nightly", "--repo", s.repo,
                                  "--time", "2024-03-24T22:00:00Z"])
        #expect(backup.status == 0, "\(backup.stderr)")
        let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.hasPrefix("20240324T220000Z-"))

        let list = try CLI.run(["list", "--json"], environment: ["BACKSTOP_REPO": s.repo])
        #expect(list.status == 0)
        let rows = try listedSnapshots(list.stdout)
        #expect(rows.count == 1)
        #expect(rows[0]["id"] as? String == id)
        #expect(rows[0]["source"] as? String == "app-data")
        #expect(rows[0]["kind"] as? String == "filesystem")
        #expect(rows[0]["tags"] as? [String] == ["nightly"])
        #expect(rows[0]["startedAt"] as? String == "2024-03-24T22:00:00.000Z")

        let human = try CLI.run(["list", "--repo", s.repo])
        #expect(human.stdout.contains(id) && human.stdout.contains("app-data") && human.stdout.contains("1 snapshot"))

        let show = try CLI.run(["show", String(id.suffix(8)), "--entries", "--json", "--repo", s.repo])
        #expect(show.status == 0, "\(show.stderr)")
        let report = try #require(try json(show.stdout) as? [String: Any])
        let manifest = try #require(report["manifest"] as? [String: Any])
        #expect(manifest["id"] as? String == id)
        for key in ["kind", "source", "host", "tags", "startedAt", "completedAt", "bytesIn", "bytesStored", "entryCount",
                    "frameCount", "framesNew", "bytesNew", "sections", "warnings", "format", "toolVersion", "files"] {
            #expect(manifest[key] != nil, "manifest has \(key)")
        }
        #expect(manifest["sha256"] == nil, "format 2 proves the stream by frames.tsv and the frame IDs")
        let entries = try #require(report["entries"] as? [[String: Any]])
        #expect(entries.map { $0["path"] as? String } == ["data", "data/a.txt", "data/sub", "data/sub/b.txt"])
        #expect(entries[3]["mode"] as? Int == 0o600)

        let text = try CLI.run(["show", id, "--entries", "--repo", s.repo])
        #expect(text.stdout.contains("data/sub/b.txt") && text.stdout.contains("600"))
    }

    @Test func aLogicalSnapshotFromStdinAndFromACommand() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("dump.sql", sampleDump())
        let fromStdin = try CLI.run(["backup", "--stdin", "--source", "mysql-dump", "--repo", s.repo, "--json"], stdinFile: s.sub("dump.sql"))
        #expect(fromStdin.status == 0, "\(fromStdin.stderr)")
        let m = try #require(try json(fromStdin.stdout) as? [String: Any])
        #expect(m["dumpFormat"] as? String == "mysqldump")
        let sections = try #require(m["sections"] as? [[String: Any]])
        #expect(sections.map { $0["name"] as? String } == ["preamble", "shop", "crm", "trailer"])

        let fromCommand = try CLI.run(["backup", "--command", "cat '\(s.sub("dump.sql"))'", "--source", "mysql-dump", "--repo", s.repo])
        #expect(fromCommand.status == 0, "\(fromCommand.stderr)")
        let id = fromCommand.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let restored = try sh(catFramesCommand(s.repo, id) + " | zstd -dc")
        #expect(restored == sampleDump())
        #expect(try sh("cd '\(s.repo)/snapshots/\(id)' && sha256sum -c SHA256SUMS").contains("frames.tsv: OK"))
    }

    @Test func aMissingPathExits66AndStoresNothing() throws {
        let s = Scratch()
        try initRepo(s)
        let r = try CLI.run(["backup", s.sub("no-such-dir"), "--source", "x", "--repo", s.repo])
        #expect(r.status == 66)
        #expect(r.stderr.contains("no-such-dir") && r.stderr.contains("does not exist"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots").isEmpty)
    }

    /// Proves: an unreadable file is a warning (exit 3), and the snapshot is kept without it.
    @Test func anUnreadableFileExits3AndTheSnapshotIsKept() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/ok.txt", "fine\n")
        try s.write("data/secret.key", "hidden\n", mode: 0o000)
        // Root reads everything: run without the capabilities that bypass file permissions.
        let prefix = getuid() == 0 ? ["/usr/bin/setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] : []
        let r = try CLI.run(["backup", s.sub("data"), "--source", "d", "--repo", s.repo], prefix: prefix)
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("data/secret.key") && r.stderr.contains("Permission denied"))
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let show = try CLI.run(["show", id, "--entries", "--json", "--repo", s.repo])
        let report = try #require(try json(show.stdout) as? [String: Any])
        let paths = (report["entries"] as? [[String: Any]])?.compactMap { $0["path"] as? String }
        #expect(paths == ["data", "data/ok.txt"])
        let warnings = (report["manifest"] as? [String: Any])?["warnings"] as? [String]
        #expect(warnings?.count == 1)
    }

    @Test func aFailingDumpCommandStoresNothingAndShowsItsStderr() throws {
        let s = Scratch()
        try initRepo(s)
        let r = try CLI.run(["backup", "--command", "echo 'partial output'; echo 'mariadb-dump: Got error: 2002' >&2; exit 2",
                             "--source", "db", "--repo", s.repo])
        #expect(r.status == 1)
        #expect(r.stderr.contains("exited with status 2") && r.stderr.contains("Got error: 2002"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/tmp").isEmpty)
        let killed = try CLI.run(["backup", "--command", "kill -9 $$", "--source", "db", "--repo", s.repo])
        #expect(killed.status == 1)
        #expect(killed.stderr.contains("killed by signal 9"))
    }

    @Test func aTruncatedDumpIsRefusedUnlessRaw() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("cut.sql", sampleDump(complete: false))
        let r = try CLI.run(["backup", "--stdin", "--source", "db", "--repo", s.repo], stdinFile: s.sub("cut.sql"))
        #expect(r.status == 65)
        #expect(r.stderr.contains("-- Dump completed") && r.stderr.contains("nothing was stored"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots").isEmpty)
        let raw = try CLI.run(["backup", "--stdin", "--format", "raw", "--source", "db", "--repo", s.repo], stdinFile: s.sub("cut.sql"))
        #expect(raw.status == 0, "\(raw.stderr)")
    }

    @Test func notARepositoryExits1WithAHintToInit() throws {
        let s = Scratch()
        let r = try CLI.run(["list", "--repo", s.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("backstop init"))
        let j = try CLI.run(["list", "--repo", s.path, "--json"])
        let failure = try #require(try json(j.stdout) as? [String: Any])
        #expect(failure["exitCode"] as? Int == 1)
        #expect((failure["error"] as? String)?.contains("not a Backstop repository") == true)
    }

    @Test(arguments: [
        (["backup", "--source", "x"], "give PATHs"),
        (["backup", "/tmp", "--stdin", "--source", "x"], "exclude each other"),
        (["backup", "/tmp", "--source", "x", "--time", "yesterday"], "accepted forms"),
        (["backup", "/tmp", "--source", "bad name!"], "not allowed"),
        (["backup", "/tmp", "--source", "x", "--tag", "nightly", "--tag", "a,b"], "tag name \"a,b\" is not allowed"),
        (["backup", "--stdin", "--source", "x", "--format", "xml"], "--format xml"),
    ])
    func usageErrorsExit64(arguments: [String], message: String) throws {
        let s = Scratch()
        try initRepo(s)
        let r = try CLI.run(arguments + ["--repo", s.repo])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    /// Proves: a second writer waits for --lock-timeout, then exits 75 naming the holder.
    @Test func aSecondWriterExits75NamingTheHolder() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("dump.sql", sampleDump())
        let first = try CLI.startHoldingLock(["backup", "--command", "sleep 4; cat '\(s.sub("dump.sql"))'", "--source", "slow", "--repo", s.repo], repo: s.repo)
        defer { first.waitUntilExit() }
        let start = Date()
        let second = try CLI.run(["backup", "--stdin", "--source", "fast", "--repo", s.repo, "--lock-timeout", "1s"], stdinFile: s.sub("dump.sql"))
        #expect(second.status == 75, "\(second.stderr)")
        #expect(second.stderr.contains("locked by pid \(first.processIdentifier)"))
        #expect(second.stderr.contains("backstop backup --source slow"))
        #expect(Date().timeIntervalSince(start) >= 1)
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
    }

    @Test func catalogRebuildRecreatesTheIndex() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/a", "a")
        for day in 1...3 {
            let r = try CLI.run(["backup", s.sub("data"), "--source", "d", "--time", "2024-03-0\(day)", "--repo", s.repo])
            #expect(r.status == 0)
        }
        try FileManager.default.removeItem(atPath: s.repo + "/catalog.sqlite")
        let rebuilt = try CLI.run(["catalog", "rebuild", "--repo", s.repo])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        #expect(rebuilt.stdout.contains("3 snapshots"))
        let list = try CLI.run(["list", "--json", "--repo", s.repo])
        #expect(try listedSnapshots(list.stdout).count == 3)
    }
}
