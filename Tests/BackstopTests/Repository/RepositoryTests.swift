import Foundation
import Testing
@testable import Backstop

/// The repository facade on every backend; the tests about the local disk (its lock file, `tmp/`)
/// say so and run on a local one only.
@Suite struct RepositoryTests {
    @Test(arguments: Backends.allCases)
    func initWritesItsIdentityAndRefusesASecondInit(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let json = try JSONSerialization.jsonObject(with: Data(t.stored(RepositoryLayout.config))) as? [String: Any]
        #expect(json?["format"] as? Int == 2)
        #expect((json?["compression"] as? [String: Any])?["algorithm"] as? String == "zstd")
        #expect((json?["compression"] as? [String: Any])?["level"] as? Int == 3)
        #expect(throws: RepositoryError.self) { try Repository.create(storage: t.base, catalogPath: t.catalogPath) }
        if let local = t.base as? LocalBackend {
            // The local disk's folders.
            for sub in ["snapshots", "events", "verifications", "tmp", "locks"] {
                #expect(FileSystem.isDirectory(local.root + "/" + sub))
            }
            #expect(throws: RepositoryError.self) { try Repository.create(at: local.root) }
        }
    }

    @Test(arguments: Backends.allCases)
    func openingSomethingElseSaysToRunInit(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = backend.makeStorage(dir)
        try storage.prepare()
        do {
            _ = try Repository.open(storage: storage, catalogPath: dir.sub("catalog.sqlite"))
            Issue.record("opened storage that holds no repository")
        } catch let error as RepositoryError {
            #expect(error.exitStatus == .failure)
            #expect(error.description.contains("backstop init"))
            #expect(error.description.contains(storage.location))
        }
    }

    @Test(arguments: Backends.allCases)
    func aSecondWriterTimesOutNamingTheHolder(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let repo = try backend.makeRepository(dir).repo
        try repo.withWriterLock(command: "first", timeout: 0, warn: { _ in }) {
            let start = Date()
            do {
                try repo.withWriterLock(command: "second", timeout: 0.3, warn: { _ in }) {}
                Issue.record("second writer got the lock")
            } catch let RepositoryError.lockHeld(_, holder, _, _) {
                #expect(holder.pid == getpid())
                #expect(holder.command == "first")
                #expect(Date().timeIntervalSince(start) >= 0.3)
            }
        }
        // Released: a third writer gets it at once.
        try repo.withWriterLock(command: "third", timeout: 0, warn: { _ in }) {}
    }

    /// About the local disk's lock file (a dead pid of this host); on other backends a lease
    /// is broken once expired (`StorageBackendTests`).
    @Test func aStaleLockOfADeadProcessIsBrokenWithAWarning() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        // A pid that existed and is gone: a child that already exited.
        let child = try runProcess("/bin/sh", ["-c", "echo $$"])
        let deadPID = Int32(child.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))!
        let stale = LockHolder(host: ProcessIdentity.hostName, pid: deadPID, startedAt: Date(), command: "crashed backup")
        try writeFile(repo.locksDirectory + "/writer.lock", Array(try Timestamp.jsonEncoder().encode(stale)))
        var warnings: [String] = []
        try repo.withWriterLock(command: "next", timeout: 0, warn: { warnings.append($0) }) {}
        #expect(warnings.contains { $0.contains("stale lock") && $0.contains("crashed backup") })
    }

    /// About the local disk: `tmp/` is where a local backend's puts are staged.
    @Test func leftoversInTmpAreRemovedByTheNextWriter() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try writeFile(repo.tmpDirectory + "/20240324T220000Z-deadbeef/data.zst", [1, 2, 3])
        var warnings: [String] = []
        try repo.withWriterLock(command: "w", timeout: 0, warn: { warnings.append($0) }) {}
        #expect(try FileSystem.list(repo.tmpDirectory).isEmpty)
        #expect(warnings.count == 1)
    }

    @Test(arguments: Backends.allCases)
    func openingReconcilesTheCatalogWithTheSnapshotFolders(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        try writeFile(dir.sub("src/a"), [1])
        let options = BackupOptions(source: "s")
        let kept = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
        let dropped = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
        // A crash between commit and catalog insert: the row is missing. A snapshot removed by hand: a row too many.
        try repo.catalog.remove(kept.id)
        for key in try t.base.list(under: RepositoryLayout.snapshot(dropped.id)) { try t.damage(key, with: nil) }
        let reopened = try t.reopen()
        #expect(reopened.reconciled.added == [kept.id])
        #expect(reopened.reconciled.removed == [dropped.id])
        #expect(try reopened.catalog.snapshots().map(\.id) == [kept.id])
    }

    @Test(arguments: Backends.allCases)
    func catalogRebuildUsesTheManifestsAlone(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        try writeFile(dir.sub("src/a"), [1])
        var ids: [SnapshotID] = []
        for i in 0..<3 {
            var options = BackupOptions(source: "s\(i)", tags: ["t\(i)"])
            options.time = Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 86400)
            ids.append(try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo).id)
        }
        let before = try repo.catalog.snapshots()
        try writeFile(t.catalogPath, Array("this is not sqlite".utf8))
        let report = try t.rebuildCatalog()
        #expect(report.added.sorted() == ids.sorted())
        let after = try t.reopen().catalog.snapshots()
        #expect(after == before)
        #expect(after.map(\.tags) == [["t0"], ["t1"], ["t2"]])
    }

    @Test(arguments: Backends.allCases)
    func prefixesResolveAndAmbiguityIsAnError(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let repo = try backend.makeRepository(dir).repo
        try writeFile(dir.sub("src/a"), [1])
        var options = BackupOptions(source: "s")
        options.time = Date(timeIntervalSince1970: 1_700_000_000)
        let a = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
        let b = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
        #expect(try repo.resolve(a.id.rawValue) == a.id)
        #expect(try repo.resolve(a.id.suffix) == a.id)
        #expect(try repo.resolve(b.id.suffix) == b.id)
        #expect(throws: RepositoryError.self) { try repo.resolve("20231114") }
        #expect(throws: RepositoryError.self) { try repo.resolve("zzzz") }
    }

    @Test func snapshotIDsSortByTimeAndParseStrictly() {
        let early = SnapshotID(startedAt: Date(timeIntervalSince1970: 1_711_317_600), suffix: 0xffff_ffff)
        let late = SnapshotID(startedAt: Date(timeIntervalSince1970: 1_711_317_601), suffix: 0)
        #expect(early.rawValue == "20240324T220000Z-ffffffff")
        #expect(early < late)
        #expect(SnapshotID("20240324T220000Z-1a2b3c4d") != nil)
        #expect(SnapshotID("20240324T220000Z-1A2B3C4D") == nil)
        #expect(SnapshotID("20240324T220000-1a2b3c4d") == nil)
    }
}
