import Foundation
import Testing
@testable import Backstop

/// Prune on every backend: the planned snapshots go with their history; the rest, and the
/// catalog of a fresh open, are untouched.
@Suite struct PruneTests {
    @Test(arguments: Backends.allCases)
    func pruneRemovesThePlannedSnapshotsAndTheirHistory(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        try writeSourceTree(dir)
        let t0 = Date(timeIntervalSince1970: 1_711_317_600)
        var ids: [SnapshotID] = []
        for day in 0..<4 { ids.append(try backUp(dir, to: t.repo, time: t0.addingTimeInterval(Double(day) * 86_400)).id) }
        #expect(try t.repo.verify(ids, mode: .quick).allSatisfy { $0.passed })
        let plan = try t.repo.retentionPlan(RetentionPolicy(keepLast: 2), timeZone: TimeZone(identifier: "UTC")!,
                                            now: t0.addingTimeInterval(4 * 86_400))
        let removed = try t.repo.withWriterLock(command: "prune", timeout: 0, warn: { _ in }) { try t.repo.prune(plan).removed }
        #expect(removed.sorted() == Array(ids.prefix(2)))
        #expect(try t.repo.snapshotIDs() == Array(ids.suffix(2)))
        #expect(try t.repo.snapshots().map(\.id) == Array(ids.suffix(2)))
        #expect(try t.reopen().snapshots().map(\.id) == Array(ids.suffix(2)))
        for id in ids.prefix(2) {
            #expect(try t.base.list(under: RepositoryLayout.snapshot(id)).isEmpty)
            #expect(try t.base.list(under: RepositoryLayout.verifications(of: id)).isEmpty)
        }
        for id in ids.suffix(2) {
            #expect(Verifier(repository: t.repo, id: id).verify(mode: .full).passed)
            #expect(try t.base.list(under: RepositoryLayout.verifications(of: id)).count == 1)
        }
    }
}
