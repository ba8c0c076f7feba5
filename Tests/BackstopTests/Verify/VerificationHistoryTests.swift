import Foundation
import Testing
@testable import Backstop

/// Verification history lives in the repository (`verifications/`), mirrored in the catalog: a
/// rebuilt catalog keeps it, two catalogs of one repository agree on which snapshot is known
/// bad, and a repository that cannot be written still verifies and reports.
@Suite struct VerificationHistoryTests {
    static let t0 = Date(timeIntervalSince1970: 1_711_317_600)

    /// Three snapshots, all verified; the middle one then damaged and found bad.
    func verifiedRepository(_ t: TestRepository, _ dir: TemporaryDirectory) throws -> [Manifest] {
        try writeSourceTree(dir)
        var ms: [Manifest] = []
        for hour in 0..<3 { ms.append(try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(Double(hour) * 3600))) }
        #expect(try t.repo.verify(ms.map(\.id), mode: .quick).allSatisfy(\.passed))
        let key = RepositoryLayout.snapshotFile(ms[1].id, ms[1].payloadName)
        var bytes = try t.stored(key)
        bytes[bytes.count / 2] ^= 0x10
        try t.damage(key, with: bytes)
        let bad = try t.repo.verify([ms[1].id], mode: .full)
        #expect(bad.count == 1 && !bad[0].passed)
        return ms
    }

    @Test(arguments: Backends.allCases)
    func catalogRebuildKeepsTheHistory(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let ms = try verifiedRepository(t, dir)
        let before = try t.repo.lastVerifications()
        #expect(before.count == 3)
        #expect(before[ms[1].id]?.passed == false)
        try t.rebuildCatalog()
        let after = try t.reopen().lastVerifications()
        #expect(after == before)
        // The selection still passes over the known-bad one.
        let chosen = try t.reopen().selection(SelectionCriteria(point: .before(Self.t0.addingTimeInterval(7200), event: nil), source: "s"))
        #expect(chosen.chosen?.id == ms[0].id, "\(chosen.explanation)")
    }

    @Test(arguments: Backends.allCases)
    func twoCatalogsOfOneRepositoryAgreeOnWhatIsKnownBad(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        try writeSourceTree(dir)
        let old = try backUp(dir, to: t.repo, time: Self.t0)
        let new = try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(3600))
        // Another host's catalog (a local cache of its own) sees both, and no history yet.
        let otherCatalog = dir.sub("other-host-catalog.sqlite")
        let other = try t.reopen(catalogPath: otherCatalog)
        #expect(try other.snapshots().map(\.id) == [old.id, new.id])
        #expect(try other.lastVerifications().isEmpty)
        #expect(try other.selection(SelectionCriteria(point: .latest, source: "s")).chosen?.id == new.id)

        // This host finds the newest one bad.
        let key = RepositoryLayout.snapshotFile(new.id, new.payloadName)
        var bytes = try t.stored(key)
        bytes[bytes.count / 3] ^= 0x01
        try t.damage(key, with: bytes)
        #expect(try t.repo.verify([new.id], mode: .full).allSatisfy { !$0.passed })

        // The other host, at its next open, knows it too, and passes it over.
        let reopened = try t.reopen(catalogPath: otherCatalog)
        #expect(try reopened.lastVerifications()[new.id]?.passed == false)
        #expect(try reopened.lastVerifications() == t.repo.lastVerifications())
        let selection = try reopened.selection(SelectionCriteria(point: .latest, source: "s"))
        #expect(selection.chosen?.id == old.id, "\(selection.explanation)")
    }

    /// Running as root, `chmod -R a-w` does not stop writes: the repository is then made
    /// read-only by a `FaultyBackend` that refuses every put with EROFS (on both backends).
    @Test(arguments: Backends.allCases)
    func aReadOnlyRepositoryStillVerifiesWithOneWarning(backend: Backends) throws {
        let dir = TemporaryDirectory()
        var faulty: FaultyBackend!
        let t = try backend.makeRepository(dir, wrap: { faulty = FaultyBackend($0); return faulty })
        try writeSourceTree(dir)
        var ids: [SnapshotID] = []
        for hour in 0..<2 { ids.append(try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(Double(hour) * 3600)).id) }
        let repo: Repository
        if getuid() != 0, let local = t.base as? LocalBackend {
            try shell("chmod -R a-w '\(local.root)'")
            repo = try t.reopen()
        } else {
            faulty.refusePuts(errno: EROFS)
            repo = try t.reopen(on: faulty)
        }
        var warnings: [String] = []
        let results = try repo.verify(ids, mode: .full, warn: { warnings.append($0) })
        #expect(results.map(\.snapshot) == ids)
        #expect(results.allSatisfy { $0.passed }, "\(results.map(\.problems))")
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.contains("could not be saved") == true, "\(warnings)")
        #expect(try t.base.list(under: RepositoryLayout.verifications).isEmpty, "nothing was stored")
    }
}
