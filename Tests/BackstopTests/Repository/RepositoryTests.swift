import Foundation
import Testing
@testable import Backstop

@Suite struct RepositoryTests {
    @Test func initLaysOutTheRepository() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        for sub in ["snapshots", "events", "tmp", "locks"] {
            #expect(FileSystem.isDirectory(repo.path + "/" + sub))
        }
        let json = try JSONSerialization.jsonObject(with: Data(readFile(repo.path + "/backstop.json"))) as? [String: Any]
        #expect(json?["format"] as? Int == 2)
        #expect((json?["compression"] as? [String: Any])?["algorithm"] as? String == "zstd")
        #expect((json?["compression"] as? [String: Any])?["level"] as? Int == 3)
        #expect(throws: RepositoryError.self) { try Repository.create(at: repo.path) }
    }

    @Test func openingSomethingElseSaysToRunInit() throws {
        let dir = TemporaryDirectory()
        do {
            _ = try Repository.open(at: dir.path)
            Issue.record("opened a folder that is no repository")
        } catch let error as RepositoryError {
            #expect(error.exitStatus == .failure)
            #expect(error.description.contains("backstop init"))
        }
    }

    @Test func aSecondWriterTimesOutNamingTheHolder() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
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

    @Test func aStaleLockOfADeadProcessIsBrokenWithAWarning() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        // A pid that existed and is gone: a child that already exited.
        let child = try runProcess("/bin/sh", ["-c", "echo $$"])
        let deadPID = Int32(child.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))!
        let stale = LockHolder(host: FileSystem.hostName, pid: deadPID, startedAt: Date(), command: "crashed backup")
        try writeFile(repo.locksDirectory + "/writer.lock", Array(try Timestamp.jsonEncoder().encode(stale)))
        var warnings: [String] = []
        try repo.withWriterLock(command: "next", timeout: 0, warn: { warnings.append($0) }) {}
        #expect(warnings.contains { $0.contains("stale lock") && $0.contains("crashed backup") })
    }

    @Test func leftoversInTmpAreRemovedByTheNextWriter() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try writeFile(repo.tmpDirectory + "/20240324T220000Z-deadbeef/data.zst", [1, 2, 3])
        var warnings: [String] = []
        try repo.withWriterLock(command: "w", timeout: 0, warn: { warnings.append($0) }) {}
        #expect(try FileSystem.list(repo.tmpDirectory).isEmpty)
        #expect(warnings.count == 1)
    }

    @Test func openingReconcilesTheCatalogWithTheSnapshotFolders() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try writeFile(dir.sub("src/a"), [1])
        let options = BackupOptions(source: "s")
        let kept = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
        let dropped = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
        // A crash between rename and catalog insert: the row is missing. A folder removed by hand: a row too many.
        try repo.catalog.remove(kept.id)
        try FileSystem.removeTree(repo.snapshotDirectory(dropped.id))
        let reopened = try Repository.open(at: repo.path)
        #expect(reopened.reconciled.added == [kept.id])
        #expect(reopened.reconciled.removed == [dropped.id])
        #expect(try reopened.catalog.snapshots().map(\.id) == [kept.id])
    }

    @Test func catalogRebuildUsesTheManifestsAlone() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try writeFile(dir.sub("src/a"), [1])
        var ids: [SnapshotID] = []
        for i in 0..<3 {
            var options = BackupOptions(source: "s\(i)", tags: ["t\(i)"])
            options.time = Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 86400)
            ids.append(try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo).id)
        }
        let before = try repo.catalog.snapshots()
        try writeFile(repo.catalogPath, Array("this is not sqlite".utf8))
        let report = try Repository.rebuildCatalog(at: repo.path)
        #expect(report.added.sorted() == ids.sorted())
        let after = try Repository.open(at: repo.path).catalog.snapshots()
        #expect(after == before)
        #expect(after.map(\.tags) == [["t0"], ["t1"], ["t2"]])
    }

    @Test func prefixesResolveAndAmbiguityIsAnError() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try writeFile(dir.sub("src/a"), [1])
        var options = BackupOptions(source: "s")
        options.time = Date(timeIntervalSince1970: 1_700_000_000)
        let a = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
        let b = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
        #expect(try repo.resolve(a.id.rawValue) == a.id)
        #expect(try repo.resolve(a.id.suffix) == a.id)
        #expect(throws: RepositoryError.self) { try repo.resolve("20231114") }
        #expect(throws: RepositoryError.self) { try repo.resolve("zzzz") }
        _ = b
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
