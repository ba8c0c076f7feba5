import Foundation
import GRDB
import Testing
@testable import Backstop

/// The catalog on real SQLite files: what it stores from manifests, how it follows `snapshots/`
/// and `events/`, verification history, `catalog rebuild`, and catalogs of an older schema. The
/// tests through a repository run on every backend.
@Suite struct CatalogTests {
    static let t0 = Date(timeIntervalSince1970: 1_711_317_600)

    static func id(_ hours: Double, _ suffix: UInt32 = 0xabcd_0001) -> SnapshotID {
        SnapshotID(startedAt: t0.addingTimeInterval(hours * 3600), suffix: suffix)
    }

    /// A manifest with the fields the catalog indexes, completed `minutes` after `started`.
    static func manifest(_ id: SnapshotID, source: String = "db", kind: SnapshotKind = .logical, host: String = "h1",
                         tags: [String] = [], runID: RunID? = nil, started: Date = t0.addingTimeInterval(0.123),
                         minutes: Double = 5) -> Manifest {
        return Manifest(
            format: Manifest.currentFormat, id: id, kind: kind, source: source, host: host, tags: tags, runID: runID,
            paths: [], dumpFormat: kind == .logical ? .mysqldump : nil,
            startedAt: started, completedAt: started.addingTimeInterval(minutes * 60 + 0.456),
            bytesIn: 1000, bytesStored: 300, entryCount: 7, sha256: SHA256Hasher.digest([1, 2, 3]),
            frames: [], sections: [], files: [], warnings: ["w1", "w2"], toolVersion: "test")
    }

    static func result(_ id: SnapshotID, at: Date, passed: Bool, mode: VerificationMode = .quick) -> VerificationResult {
        VerificationResult(snapshot: id, source: "db", kind: .logical, mode: mode, startedAt: at, duration: 1, bytesRead: 10,
                           problems: passed ? [] : [VerificationProblem(file: "frames.tsv", location: "frame 3", message: "digest mismatch"),
                                                    VerificationProblem(file: "frames.tsv", location: "frame 4", message: "second")])
    }

    @Test func storesTheIndexedFieldsOfAManifestToTheMillisecond() throws {
        let dir = TemporaryDirectory()
        let catalog = try Catalog(path: dir.sub("catalog.sqlite"))
        let m = Self.manifest(Self.id(0), source: "app", kind: .filesystem, host: "web1",
                              tags: ["weekly", "daily", "weekly"], runID: RunID("20240101T000000Z-00000001"))
        try catalog.insert(m)
        // A second handle on the same file sees it: it is stored, not cached.
        let rows = try Catalog(path: dir.sub("catalog.sqlite")).snapshots()
        #expect(rows == [CatalogSnapshot(
            id: m.id, kind: .filesystem, source: "app", host: "web1", tags: ["daily", "weekly"], runID: "20240101T000000Z-00000001",
            startedAt: m.startedAt, completedAt: m.completedAt, bytesIn: 1000, bytesStored: 300, entryCount: 7, warningCount: 2)])
        #expect(rows[0].completedAt.timeIntervalSince1970 == 1_711_317_600.123 + 300.456)
        #expect(try catalog.snapshotIDs() == [m.id])
    }

    @Test func insertingAnIDAgainReplacesItsRowAndTags() throws {
        let dir = TemporaryDirectory()
        let catalog = try Catalog(path: dir.sub("catalog.sqlite"))
        try catalog.insert(Self.manifest(Self.id(0), source: "old", tags: ["a", "b"]))
        try catalog.insert(Self.manifest(Self.id(0), source: "new", tags: ["c"]))
        let rows = try catalog.snapshots()
        #expect(rows.map(\.source) == ["new"])
        #expect(rows.map(\.tags) == [["c"]])
        try catalog.remove(Self.id(0))
        #expect(try catalog.snapshots().isEmpty)
    }

    @Test func listsSnapshotsOldestCompletedFirst() throws {
        let dir = TemporaryDirectory()
        let catalog = try Catalog(path: dir.sub("catalog.sqlite"))
        // Started later but completed first.
        let long = Self.manifest(Self.id(0), started: Self.t0, minutes: 600)
        let short = Self.manifest(Self.id(1), started: Self.t0.addingTimeInterval(3600), minutes: 1)
        let sameEnd = Self.manifest(Self.id(1, 0x0000_0001), started: Self.t0.addingTimeInterval(3600), minutes: 1)
        for m in [long, short, sameEnd] { try catalog.insert(m) }
        #expect(try catalog.snapshots().map(\.id) == [sameEnd.id, short.id, long.id])
    }

    @Test func reconcileAddsMissingDropsGoneAndLeavesUnreadableOut() throws {
        let dir = TemporaryDirectory()
        let catalog = try Catalog(path: dir.sub("catalog.sqlite"))
        let kept = Self.id(0), gone = Self.id(1), new = Self.id(2), broken = Self.id(3)
        try catalog.insert(Self.manifest(kept))
        try catalog.insert(Self.manifest(gone))
        var reads: [SnapshotID] = []
        let manifests: (SnapshotID) throws -> Manifest = { id in
            reads.append(id)
            if id == broken { throw RepositoryError.unreadableManifest(id: id.rawValue, reason: "truncated") }
            return Self.manifest(id, tags: ["t"])
        }
        let report = try catalog.reconcile(folders: [kept, new, broken], manifest: manifests)
        #expect(report.added == [new])
        #expect(report.removed == [gone])
        #expect(report.unreadable.map(\.id) == [broken.rawValue])
        #expect(report.unreadable.first?.reason.contains("truncated") == true)
        // Only the manifests the catalog lacked were read.
        #expect(reads == [new, broken])
        #expect(try catalog.snapshots().map(\.id) == [kept, new])
        #expect(try catalog.snapshots().map(\.tags) == [[], ["t"]])

        // Nothing changed: nothing to add or remove; the unreadable one is tried again.
        reads = []
        let again = try catalog.reconcile(folders: [kept, new, broken], manifest: manifests)
        #expect(again.added.isEmpty && again.removed.isEmpty)
        #expect(again.unreadable.map(\.id) == [broken.rawValue])
        #expect(reads == [broken])
    }

    @Test func theLastVerificationIsTheOneThatCounts() throws {
        let dir = TemporaryDirectory()
        let catalog = try Catalog(path: dir.sub("catalog.sqlite"))
        let a = Self.id(0), b = Self.id(1), never = Self.id(2)
        for id in [a, b, never] { try catalog.insert(Self.manifest(id)) }
        try catalog.record(Self.result(a, at: Self.t0.addingTimeInterval(86_400), passed: true))
        try catalog.record(Self.result(a, at: Self.t0.addingTimeInterval(2 * 86_400), passed: false, mode: .full))
        try catalog.record(Self.result(b, at: Self.t0.addingTimeInterval(86_400), passed: false))
        try catalog.record(Self.result(b, at: Self.t0.addingTimeInterval(2 * 86_400), passed: true))

        let last = try catalog.lastVerifications()
        #expect(Set(last.keys) == [a, b])
        #expect(last[a] == VerificationRecord(snapshot: a, at: Self.t0.addingTimeInterval(2 * 86_400), mode: .full, passed: false,
                                              firstProblem: "frames.tsv frame 3: digest mismatch"))
        #expect(last[b]?.passed == true)
        #expect(last[b]?.firstProblem == nil)

        // Known bad is the last result: `a` is skipped by a selection that needs a verified
        // snapshot, and `b`, which failed once and then passed, is chosen.
        let verified = try catalog.select(SelectionCriteria(point: .latest, source: "db", verifiedOnly: true))
        #expect(verified.chosen?.id == b)
        // Without --verified, a known-bad snapshot is still never chosen.
        try catalog.record(Self.result(never, at: Self.t0.addingTimeInterval(3 * 86_400), passed: false))
        let any = try catalog.select(SelectionCriteria(point: .latest, source: "db"))
        #expect(any.chosen?.id == b)
    }

    @Test func verificationsOfUncatalogedSnapshotsAreNotRecorded() throws {
        let dir = TemporaryDirectory()
        let catalog = try Catalog(path: dir.sub("catalog.sqlite"))
        let known = Self.id(0), unknown = Self.id(1)
        try catalog.insert(Self.manifest(known))
        #expect(try catalog.recordIfCataloged(Self.result(known, at: Self.t0, passed: true)))
        #expect(try !catalog.recordIfCataloged(Self.result(unknown, at: Self.t0, passed: false)))
        #expect(Set(try catalog.lastVerifications().keys) == [known])
        // A snapshot's history goes with it.
        try catalog.remove(known)
        try catalog.insert(Self.manifest(known))
        #expect(try catalog.lastVerifications().isEmpty)
    }

    @Test func leastRecentlyVerifiedPutsNeverVerifiedFirst() throws {
        let dir = TemporaryDirectory()
        let catalog = try Catalog(path: dir.sub("catalog.sqlite"))
        let ids = (0..<5).map { Self.id(Double($0)) }
        for id in ids { try catalog.insert(Self.manifest(id)) }
        // ids[0] verified most recently, ids[3] long ago, ids[1] in between; ids[2] and ids[4] never.
        try catalog.record(Self.result(ids[3], at: Self.t0.addingTimeInterval(10), passed: true))
        try catalog.record(Self.result(ids[0], at: Self.t0.addingTimeInterval(30), passed: true))
        try catalog.record(Self.result(ids[1], at: Self.t0.addingTimeInterval(20), passed: false))
        #expect(try catalog.leastRecentlyVerified(5) == [ids[2], ids[4], ids[3], ids[1], ids[0]])
        #expect(try catalog.leastRecentlyVerified(3) == [ids[2], ids[4], ids[3]])
    }

    @Test func eventsAreKeptOldestFirstAndFollowTheEventsFolder() throws {
        let dir = TemporaryDirectory()
        let catalog = try Catalog(path: dir.sub("catalog.sqlite"))
        let late = Event(name: "deploy", at: Self.t0.addingTimeInterval(60), note: "v2")
        let early = Event(name: "migration", at: Self.t0, note: nil)
        try catalog.insert(late)
        try catalog.insert(early)
        #expect(try catalog.events() == [early, late])
        try catalog.removeEvent(early.id.rawValue)
        #expect(try catalog.events() == [late])
        let other = Event(name: "incident", at: Self.t0.addingTimeInterval(120), note: "x")
        try catalog.reconcileEvents([other, early])
        #expect(try catalog.events() == [early, other])
    }

    @Test(arguments: Backends.allCases)
    func openingSkipsTheListingWhileTheSnapshotsFolderIsUnchanged(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        try writeFile(dir.sub("src/a"), [1])
        let m = try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: BackupOptions(source: "s")).write(to: t.repo)
        // The open after a commit lists `snapshots/` and records the backend's change token.
        let first = try t.reopen()
        #expect(try first.catalog.snapshots().map(\.id) == [m.id])
        if backend == .s3 {
            // No change token on S3: every open lists `snapshots/`, so a lost row comes back.
            #expect(t.base.changeToken(under: RepositoryLayout.snapshots) == nil)
            try first.catalog.remove(m.id)
            #expect(try t.reopen().reconciled.added == [m.id])
            return
        }
        let token = try #require(t.base.changeToken(under: RepositoryLayout.snapshots))
        #expect(try first.catalog.meta("snapshots.fingerprint") == token)
        if let local = t.base as? LocalBackend {
            #expect(token == FileSystem.fingerprint(local.path(of: RepositoryLayout.snapshots)))
        }

        // A row lost without the folder changing: the next open does not list, so does not notice.
        try first.catalog.remove(m.id)
        let skipped = try t.reopen()
        #expect(skipped.reconciled.added.isEmpty)
        #expect(try skipped.catalog.snapshots().isEmpty)

        // Any change to the folder's entries makes the next open list it again.
        let passing = StorageKey("snapshots", "not-a-snapshot", "x")
        try t.base.put(passing, [1], mode: .createOnly)
        try t.base.delete(passing)
        let listed = try t.reopen()
        #expect(listed.reconciled.added == [m.id])
        #expect(try listed.catalog.snapshots().map(\.id) == [m.id])
    }

    @Test(arguments: Backends.allCases)
    func openingFollowsEventsAddedOrRemovedByHand(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let a = try t.repo.addEvent(name: "deploy", at: Self.t0, note: "v1")
        let b = try t.repo.addEvent(name: "migration", at: Self.t0.addingTimeInterval(60), note: nil)
        #expect(try t.reopen().events() == [a, b])
        // Another host removed `a` from the shared repository.
        try t.damage(RepositoryLayout.event(a.id.rawValue), with: nil)
        #expect(try t.reopen().events() == [b])
    }

    @Test(arguments: Backends.allCases)
    func rebuildGivesTheSameCatalogFromTheManifestsAndEvents(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        try writeFile(dir.sub("src/a"), [1])
        var ids: [SnapshotID] = []
        for i in 0..<4 {
            let options = BackupOptions(source: "s\(i % 2)", tags: i == 2 ? ["x", "a"] : [],
                                        time: Self.t0.addingTimeInterval(Double(i) * 3600), host: "host\(i)", runID: RunID("20240101T000000Z-0000000\(i / 2)"))
            ids.append(try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo).id)
        }
        try repo.addEvent(name: "deploy", at: Self.t0.addingTimeInterval(90), note: "note")
        try repo.addEvent(name: "deploy", at: Self.t0.addingTimeInterval(7200), note: nil)
        // A snapshot whose manifest is damaged stays out, and is reported.
        let damaged = ids[3]
        try t.damage(RepositoryLayout.manifest(damaged), with: Array("{\"format\": 1".utf8))

        let before = try t.reopen()
        let snapshotsBefore = try before.catalog.snapshots()
        let eventsBefore = try before.events()
        #expect(snapshotsBefore.count == 4)   // cataloged before the damage

        let report = try t.rebuildCatalog()
        #expect(report.added == Array(ids.prefix(3)))
        #expect(report.unreadable.map(\.id) == [damaged.rawValue])
        let after = try t.reopen()
        #expect(try after.catalog.snapshots() == snapshotsBefore.filter { $0.id != damaged })
        #expect(try after.events() == eventsBefore)
        #expect(try after.catalog.snapshots().first { $0.id == ids[2] }?.tags == ["a", "x"])
    }

    @Test func aCatalogOfTheFirstSchemaIsMigratedKeepingItsRows() throws {
        let dir = TemporaryDirectory()
        let path = dir.sub("catalog.sqlite")
        let id = Self.id(0)
        do {
            let old = try DatabaseQueue(path: path)
            try Catalog.migrator.migrate(old, upTo: "v1: snapshots")
            try old.write { db in
                try db.execute(sql: """
                    INSERT INTO snapshot (id, kind, source, host, runID, startedAtMs, completedAtMs, bytesIn, bytesStored, entryCount, warningCount)
                    VALUES (?, 'filesystem', 'old', 'h', NULL, 1711317600000, 1711317700000, 1, 2, 3, 0)
                    """, arguments: [id.rawValue])
                try db.execute(sql: "INSERT INTO snapshotTag (snapshotID, tag) VALUES (?, 'kept')", arguments: [id.rawValue])
            }
            #expect(try old.read { db in try db.tableExists("verification") } == false)
            try old.close()
        }
        let catalog = try Catalog(path: path)
        let rows = try catalog.snapshots()
        #expect(rows.map(\.id) == [id])
        #expect(rows.map(\.tags) == [["kept"]])
        #expect(rows.first?.completedAt == Date(timeIntervalSince1970: 1_711_317_700))
        // The later tables exist and work.
        try catalog.record(Self.result(id, at: Self.t0, passed: true))
        try catalog.insert(Event(name: "deploy", at: Self.t0, note: nil))
        try catalog.setMeta("k", "v")
        #expect(try catalog.lastVerifications()[id]?.passed == true)
        #expect(try catalog.events().count == 1)
        #expect(try catalog.meta("k") == "v")
        // A current catalog opens again without change.
        #expect(try Catalog(path: path).snapshots() == rows)
    }

    @Test(arguments: Backends.allCases)
    func aDamagedCatalogSaysToRebuildIt(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        try writeFile(t.catalogPath, Array(repeating: 0x41, count: 4096))
        do {
            _ = try Catalog(path: t.catalogPath)
            Issue.record("a damaged catalog opened")
        } catch {
            #expect(Catalog.explain(error).contains("backstop catalog rebuild"))
            #expect(!Catalog.isUnwritable(error))
        }
        do {
            _ = try t.reopen()
            Issue.record("a repository with a damaged catalog opened")
        } catch let RepositoryError.unreadableCatalog(path, _, reason) {
            #expect(path == t.base.location)
            #expect(reason.contains("backstop catalog rebuild"))
        }
        try t.rebuildCatalog()
        #expect(try t.reopen().catalog.snapshots().isEmpty)
    }
}
