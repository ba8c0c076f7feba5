import Foundation
import Testing
@testable import Backstop

/// `backup --tar-stdin` / `--tar-command`: a tar stream stored as a filesystem snapshot.
@Suite struct TarStreamSnapshotTests {
    /// Takes a snapshot of `tar` read from a file descriptor, as `--tar-stdin` does.
    func backup(_ tar: [UInt8], to repo: Repository, in dir: TemporaryDirectory, source: String = "stream") throws -> Manifest {
        let file = dir.sub("stream-\(UInt32.random(in: 0...UInt32.max)).tar")
        try writeFile(file, tar)
        let fd = open(file, O_RDONLY)
        defer { close(fd) }
        return try TarStreamSnapshotWriter(input: .fileDescriptor(fd), options: BackupOptions(source: source)).write(to: repo)
    }

    static func spec(_ path: String, _ type: EntryType, link: String? = nil, device: dev_t = 0) -> TarBuilder.Member {
        var s = TarBuilder.Spec(path, type: type, mode: type == .symlink ? 0o777 : 0o644, link: link)
        s.device = device
        return .entry(s)
    }

    /// Each hostile stream, with the entry its error must name.
    static let hostile: [(name: String, members: [TarBuilder.Member], entry: String)] = [
        ("absolute path", [.file("ok", "x"), .file("/etc/evil", "x")], "/etc/evil"),
        ("dot-dot component", [.directory("d"), .file("d/../../evil", "x")], "d/../../evil"),
        ("duplicate path", [.file("a", "1"), .file("./a", "2")], "./a"),
        ("duplicate directory", [.directory("d"), .directory("d/")], "d"),
        ("hard link out of the tree", [.file("a", "x"), .hardlink("h", to: "../outside")], "h"),
        ("hard link to an absolute path", [.hardlink("h", to: "/etc/passwd")], "h"),
        ("hard link to a path not stored before", [.hardlink("h", to: "later"), .file("later", "x")], "h"),
        ("hard link to a symlink", [.symlink("s", to: "x"), .hardlink("h", to: "s")], "h"),
        ("absolute symlink", [.symlink("s", to: "/etc/passwd")], "s"),
        ("symlink leaving the tree", [.directory("d"), .symlink("d/s", to: "../../x")], "d/s"),
        ("symlink leaving the tree through another symlink", [.symlink("l", to: "."), .symlink("s", to: "l/..")], "s"),
        ("entry below a symlink", [.symlink("s", to: "d"), .directory("d"), .file("s/f", "x")], "s/f"),
        ("entry below a file", [.file("f", "x"), .file("f/g", "y")], "f/g"),
        ("character device", [spec("null", .characterDevice, device: 0x103)], "null"),
        ("block device", [spec("disk", .blockDevice, device: 0x800)], "disk"),
    ]

    /// Proves: every hostile stream is refused with 65 naming its entry, and no snapshot is
    /// committed (the catalog and the snapshot folders stay empty).
    @Test func hostileStreamsAreRefusedBeforeAnythingIsCommitted() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        for h in Self.hostile {
            do {
                let m = try backup(TarBuilder.build(h.members), to: repo, in: dir)
                Issue.record("\(h.name): stored as \(m.id)")
            } catch let error as BackupError {
                #expect(error.exitStatus == .integrity, "\(h.name): \(error)")
                guard case let .unsafeTarEntry(entry, _) = error else { Issue.record("\(h.name): \(error)"); continue }
                #expect(entry == h.entry, "\(h.name): \(error)")
                #expect("\(error)".contains("nothing was stored"), "\(h.name): \(error)")
            } catch {
                Issue.record("\(h.name): \(error)")
            }
            #expect(try repo.snapshots().isEmpty, "\(h.name)")
        }
        #expect(try FileSystem.list(dir.sub("repo/snapshots")).isEmpty)
    }

    /// Proves: links that stay inside the tree, a fifo and a `./` root are stored.
    @Test func linksInsideTheTreeAreStored() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let m = try backup(TarBuilder.build([
            .directory("./"), .directory("./d"), .file("./d/f", "data"), .hardlink("./d/h", to: "./d/f"),
            .symlink("./d/s", to: "../d/f"), .symlink("./up", to: "d/./f"), Self.spec("./fifo", .fifo)]), to: repo, in: dir)
        let entries = try SnapshotReader(repository: repo, manifest: m).entries()
        #expect(entries.map(\.path) == ["d", "d/f", "d/h", "d/s", "up", "fifo"])
        #expect(entries.map(\.type) == [.directory, .file, .hardlink, .symlink, .symlink, .fifo])
        #expect(entries[2].linkTarget == "d/f")
        _ = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("out"))
        #expect(try readFile(dir.sub("out/d/h")) == Array("data".utf8))
        #expect(try readFile(dir.sub("out/d/s")) == Array("data".utf8))
    }

    /// Proves: a stream whose tar data ends inside an entry, or at an entry boundary without the
    /// end-of-archive blocks, or that is empty, is refused (65), nothing committed.
    @Test func aTruncatedStreamIsRefused() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let tar = TarBuilder.build([.file("a", String(repeating: "x", count: 5000)), .file("b", "y")])
        do {
            _ = try backup(Array(tar.prefix(2000)), to: repo, in: dir)
            Issue.record("stored")
        } catch let error as BackupError {
            guard case .damagedTarStream = error else { Issue.record("\(error)"); return }
            #expect(error.exitStatus == .integrity)
            #expect("\(error)".contains("nothing was stored"), "\(error)")
        }
        // Cut right after the first entry (header and one data block): no end-of-archive blocks.
        let atBoundary = TarBuilder.build([.file("a", "x"), .file("b", "y")])
        do {
            _ = try backup(Array(atBoundary.prefix(1024)), to: repo, in: dir)
            Issue.record("stored")
        } catch let error as BackupError {
            guard case let .damagedTarStream(_, reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("end-of-archive"), "\(error)")
        }
        #expect(try backup(atBoundary, to: repo, in: dir).entryCount == 2)
        #expect(try repo.snapshots().count == 1)
        do {
            _ = try backup([], to: repo, in: dir)
            Issue.record("stored")
        } catch let error as BackupError {
            guard case .emptyStream = error else { Issue.record("\(error)"); return }
        }
        #expect(try repo.snapshots().count == 1)
    }

    /// Proves: a command that exits non-zero (after writing a valid stream) commits nothing, and
    /// its error carries the command's stderr.
    @Test func aFailingTarCommandCommitsNothing() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try writeFile(dir.sub("ok.tar"), TarBuilder.build([.file("a", "x")]))
        let command = "cat '\(dir.sub("ok.tar"))'; echo 'pg_basebackup: error: connection lost' >&2; exit 3"
        do {
            _ = try TarStreamSnapshotWriter(input: .command(command), options: BackupOptions(source: "s")).write(to: repo)
            Issue.record("stored")
        } catch let error as BackupError {
            guard case let .commandFailed(_, status, tail) = error else { Issue.record("\(error)"); return }
            #expect(status == 3)
            #expect(tail.contains("connection lost"))
        }
        #expect(try repo.snapshots().isEmpty)
        let ok = try TarStreamSnapshotWriter(input: .command("cat '\(dir.sub("ok.tar"))'"), options: BackupOptions(source: "s")).write(to: repo)
        #expect(ok.entryCount == 1)
    }

    /// Proves: backup_label's fields and backup_manifest's stop LSN go into the manifest.
    @Test func backupLabelIsRecorded() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let label = """
            START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
            CHECKPOINT LOCATION: 0/2000060
            BACKUP METHOD: streamed
            BACKUP FROM: primary
            START TIME: 2026-11-28 03:20:00 UTC
            LABEL: nightly base
            START TIMELINE: 1

            """
        let manifest = #"{ "PostgreSQL-Backup-Manifest-Version": 1, "Files": [], "WAL-Ranges": [ { "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" } ] }"#
        let m = try backup(TarBuilder.build([.file("PG_VERSION", "15\n"), .file("backup_label", label), .directory("global"),
                                             .file("backup_manifest", manifest)]), to: repo, in: dir)
        let pg = try #require(try repo.manifest(m.id).postgresBackup)
        #expect(pg.startLSN == "0/2000028")
        #expect(pg.startWALFile == "000000010000000000000002")
        #expect(pg.checkpointLSN == "0/2000060")
        #expect(pg.startTimeline == 1)
        #expect(pg.label == "nightly base")
        #expect(pg.startTime == "2026-11-28 03:20:00 UTC")
        #expect(pg.stopLSN == "0/2000100")
        let plain = try backup(TarBuilder.build([.file("a", "x")]), to: repo, in: dir)
        #expect(plain.postgresBackup == nil)
    }
}
