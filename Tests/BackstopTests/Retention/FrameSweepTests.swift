import Foundation
import Testing
@testable import Backstop

/// Proves prune's frame garbage collection (format 2): frames no kept snapshot uses are removed,
/// shared ones never; a crash at any delete leaves nothing a kept snapshot needs missing; a
/// backup beside a prune loses nothing; and shared-frame damage is reported against every user.
@Suite struct FrameSweepTests {
    static let t0 = Date(timeIntervalSince1970: 1_711_317_600)
    static let utc = TimeZone(identifier: "UTC")!

    /// Four nightly snapshots of a tree where one big file changes every night and the rest
    /// stays: frames shared by all, and frames of one night only.
    func fourNights(_ dir: TemporaryDirectory, _ repo: Repository) throws -> [Manifest] {
        var gen = SeededBytes(seed: 11)
        try writeFile(dir.sub("src/shared.bin"), gen.bytes(3 << 20))
        try writeFile(dir.sub("src/small.txt"), Array("unchanged\n".utf8))
        var manifests: [Manifest] = []
        for night in 0..<4 {
            try writeFile(dir.sub("src/nightly.bin"), gen.bytes(2 << 20))
            manifests.append(try backUp(dir, to: repo, time: Self.t0.addingTimeInterval(Double(night) * 86_400)))
        }
        return manifests
    }

    func frames(_ repo: Repository, _ m: Manifest) throws -> Set<SHA256Digest> {
        Set(try SnapshotReader(repository: repo, manifest: m).frameList().map(\.id))
    }

    func storedFrames(_ storage: StorageBackend) throws -> Set<SHA256Digest> {
        Set(try storage.list(under: RepositoryLayout.frames).compactMap { SHA256Digest(hex: $0.name) })
    }

    func keepLast2(_ repo: Repository) throws -> RetentionPlan {
        try repo.retentionPlan(RetentionPolicy(keepLast: 2), timeZone: Self.utc, now: Self.t0.addingTimeInterval(5 * 86_400))
    }

    @Test(arguments: Backends.allCases)
    func pruneRemovesExactlyTheFramesNoKeptSnapshotUses(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let m = try fourNights(dir, t.repo)
        let used = try m.map { try frames(t.repo, $0) }
        #expect(used[0].intersection(used[3]).count >= 3, "the unchanged files share frames")
        #expect(m[1].framesNew! < m[1].frameCount!, "a later night adds only what changed")
        let plan = try keepLast2(t.repo)
        let estimate = try t.repo.bytesFreed(by: plan)
        let result = try t.repo.withWriterLock(command: "prune", timeout: 0, warn: { _ in }) { try t.repo.prune(plan) }
        #expect(result.removed.sorted() == [m[0].id, m[1].id])
        let kept = used[2].union(used[3])
        #expect(try storedFrames(t.base) == kept, "every kept frame stays, every other one goes")
        #expect(result.framesSwept == used[0].union(used[1]).subtracting(kept).count)
        #expect(estimate.frames == result.framesSwept, "--dry-run predicts the frames")
        for s in m.suffix(2) { #expect(Verifier(repository: t.repo, id: s.id).verify(mode: .full).passed) }
        let stats = try t.reopen().stats()
        #expect(stats.frames == kept.count)
    }

    /// A prune that dies after any delete of its sweep loses nothing a kept snapshot needs, and
    /// the next prune removes the rest.
    @Test(arguments: Backends.allCases)
    func aCrashDuringTheSweepLosesNothingKept(backend: Backends) throws {
        let probe = TemporaryDirectory()
        let p = try backend.makeRepository(probe)
        let pm = try fourNights(probe, p.repo)
        let doomed = try pm.prefix(2).reduce(Set<SHA256Digest>()) { $0.union(try frames(p.repo, $1)) }
            .subtracting(try pm.suffix(2).reduce(Set<SHA256Digest>()) { $0.union(try frames(p.repo, $1)) })
        // Deletes: per removed snapshot its manifest, frame list, entry list, sums and history,
        // then the swept frames; crash after each in turn.
        let total = 2 * 4 + doomed.count
        for n in 1...total {
            let dir = TemporaryDirectory()
            var faulty: FaultyBackend!
            let t = try backend.makeRepository(dir, wrap: { faulty = FaultyBackend($0); return faulty })
            let m = try fourNights(dir, t.repo)
            let plan = try keepLast2(t.repo)
            faulty.crashAfterDelete(n)
            do {
                try t.repo.withWriterLock(command: "prune", timeout: 0, warn: { _ in }) { _ = try t.repo.prune(plan) }
            } catch is SimulatedCrash {}
            let after = try t.reopen()
            for s in m.suffix(2) {
                #expect(Verifier(repository: after, id: s.id).verify(mode: .full).passed, "crash after delete \(n): \(s.id)")
            }
            try t.holderDied()
            try after.withWriterLock(command: "prune", timeout: 0, warn: { _ in }) { _ = try after.prune(try keepLast2(after)) }
            #expect(try storedFrames(t.base) == (try m.suffix(2).reduce(Set<SHA256Digest>()) { $0.union(try frames(after, $1)) }), "crash after delete \(n)")
        }
    }

    /// Backups and prune take the same exclusive lease: run together, from two threads, every
    /// snapshot that is kept still has all its frames.
    @Test func aBackupBesidePruneLosesNoFrame() throws {
        let dir = TemporaryDirectory()
        let t = try Backends.local.makeRepository(dir)
        _ = try fourNights(dir, t.repo)
        let plan = try keepLast2(t.repo)
        let second = try Repository.open(storage: t.base, catalogPath: t.catalogPath)
        let done = DispatchSemaphore(value: 0)
        final class Outcome: @unchecked Sendable { var error: Error? }
        let outcome = Outcome()
        let box = UncheckedBox(value: (second, dir))
        Thread {
            let (repo, dir) = box.value
            do {
                try repo.withWriterLock(command: "backup", timeout: 30, warn: { _ in }) {
                    _ = try backUp(dir, to: repo, time: Self.t0.addingTimeInterval(6 * 86_400))
                }
            } catch { outcome.error = error }
            done.signal()
        }.start()
        try t.repo.withWriterLock(command: "prune", timeout: 30, warn: { _ in }) { _ = try t.repo.prune(plan) }
        done.wait()
        #expect(outcome.error == nil, "\(String(describing: outcome.error))")
        let reopened = try t.reopen()
        for id in try reopened.snapshotIDs() {
            #expect(Verifier(repository: reopened, id: id).verify(mode: .full).passed, "\(id)")
        }
    }

    /// A bit flipped in a frame that every snapshot uses fails every snapshot's verification,
    /// each naming the frame object; the frame is read once.
    @Test(arguments: Backends.allCases)
    func aDamagedSharedFrameIsReportedAgainstEverySnapshotThatUsesIt(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let m = try fourNights(dir, t.repo)
        let shared = try m.dropFirst().reduce(try frames(t.repo, m[0])) { $0.intersection(try frames(t.repo, $1)) }
        let victim = try #require(shared.sorted().first)
        let key = RepositoryLayout.frame(victim)
        var bytes = try t.stored(key)
        bytes[bytes.count / 2] ^= 0x10
        try t.damage(key, with: bytes)
        let results = try t.repo.verify(m.map(\.id), mode: .full, warn: { _ in })
        #expect(results.count == 4)
        for r in results {
            #expect(!r.passed, "\(r.snapshot)")
            #expect(r.problems.contains { $0.message.contains(key.rawValue) }, "\(r.snapshot): \(r.problems)")
        }
        // Every snapshot is now known bad: selection passes over all of them.
        #expect(try t.repo.lastVerifications().values.allSatisfy { !$0.passed })
    }
}
