import Foundation
import Testing
@testable import Backstop

/// `Repository.verify` and `sampleToVerify` on every backend: the history a run records and the
/// rotation of `--sample` (the same checks as `VerifierTests.historyAndSampleRotation` and
/// `uncatalogedSnapshotsTakeAtMostHalfOfTheSampleInTurns`, which run on a local repository).
@Suite struct VerificationRunTests {
    func snapshots(_ count: Int, _ t: TestRepository, _ dir: TemporaryDirectory) throws -> [SnapshotID] {
        try writeFile(dir.sub("src/a"), [1, 2, 3])
        var ids: [SnapshotID] = []
        for i in 0..<count {
            var o = BackupOptions(source: "s")
            o.time = Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 3600)
            ids.append(try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: o).write(to: t.repo).id)
        }
        return ids
    }

    @Test(arguments: Backends.allCases)
    func historyAndSampleRotation(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        let ids = try snapshots(6, t, dir)
        // K = 3 runs of --sample 2 over 6 snapshots: each verified exactly once.
        var seen: [SnapshotID] = []
        for _ in 0..<3 {
            let batch = try repo.catalog.leastRecentlyVerified(2)
            seen += try repo.verify(batch, mode: .quick).map(\.snapshot)
            usleep(5_000)
        }
        #expect(seen.sorted() == ids.sorted())
        #expect(Set(seen).count == 6)
        let last = try repo.catalog.lastVerifications()
        #expect(last.count == 6 && last.values.allSatisfy { $0.passed && $0.mode == .quick })
        // The next sample starts again with the one verified longest ago.
        #expect(try repo.catalog.leastRecentlyVerified(1) == [seen[0]])
        // Each verification is stored in the repository too.
        #expect(try t.base.list(under: RepositoryLayout.verifications).count == 6)
    }

    @Test(arguments: Backends.allCases)
    func uncatalogedSnapshotsTakeAtMostHalfOfTheSampleInTurns(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let ids = try snapshots(6, t, dir)
        let uncataloged = Array(ids.prefix(2)), cataloged = Array(ids.dropFirst(2))
        for id in uncataloged { try t.damage(RepositoryLayout.manifest(id), with: Array("{\n".utf8)) }
        try t.rebuildCatalog()
        let repo = try t.reopen()
        #expect(try repo.catalog.snapshotIDs() == Set(cataloged))

        var seen: [SnapshotID] = []
        var uncatalogedSeen: [SnapshotID] = []
        for night in 0..<4 {
            let batch = try repo.sampleToVerify(2, now: Date(timeIntervalSince1970: 1_800_000_000 + Double(night) * 86_400))
            #expect(batch.count == 2)
            let results = try repo.verify(batch, mode: .quick)
            seen += results.filter { cataloged.contains($0.snapshot) }.map(\.snapshot)
            uncatalogedSeen += results.filter { uncataloged.contains($0.snapshot) }.map(\.snapshot)
            usleep(5_000)
        }
        #expect(Set(seen) == Set(cataloged), "every cataloged snapshot within 4 nights: \(seen)")
        #expect(uncatalogedSeen.count == 4 && Set(uncatalogedSeen) == Set(uncataloged), "\(uncatalogedSeen)")
        #expect(try !repo.sampleToVerify(3, excluding: Set(cataloged.prefix(1))).contains(cataloged[0]))
        #expect(Set(try repo.sampleToVerify(6)) == Set(ids))
    }
}
