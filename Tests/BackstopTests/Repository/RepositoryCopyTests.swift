import Foundation
import Testing
@testable import Backstop

/// `Repository.copy`: snapshots, their verification history and events from one repository to
/// another, sending only the frames the target lacks, every frame read checked, and nothing
/// half-copied ever visible in the target.
@Suite struct RepositoryCopyTests {
    /// Every ordered pair of backends.
    static let pairs: [(Backends, Backends)] = Backends.allCases.flatMap { a in Backends.allCases.map { (a, $0) } }

    /// A source repository with two filesystem snapshots of a tree (the second after one file
    /// changed), an event and a full verification of each.
    func sourceWithHistory(_ dir: TemporaryDirectory, on backend: Backends) throws -> (TestRepository, [Manifest]) {
        let t = try backend.makeRepository(dir)
        try writeSourceTree(dir, seed: 7, big: true)
        let first = try backUp(dir, to: t.repo, time: Date(timeIntervalSince1970: 1_790_000_000))
        var gen = SeededBytes(seed: 99)
        try writeFile(dir.sub("src/f1.dat"), gen.text(700_000))
        let second = try backUp(dir, to: t.repo, time: Date(timeIntervalSince1970: 1_790_086_400))
        try t.repo.addEvent(name: "upgrade", at: Date(timeIntervalSince1970: 1_790_090_000), note: "to 11.4")
        let results = try t.repo.verify([first.id, second.id], mode: .full)
        #expect(results.allSatisfy { $0.passed })
        return (t, [first, second])
    }

    /// Restores `id` of `repo` into a fresh folder of `dir` and returns its path.
    func restore(_ id: SnapshotID, of repo: Repository, in dir: TemporaryDirectory, as name: String) throws -> String {
        let target = dir.sub(name)
        _ = try repo.restore(candidates: [id], request: RestoreRequest(target: target), fallback: false) { _ in }
        return target
    }

    func distinctFrames(_ repo: Repository, _ m: Manifest) throws -> Set<SHA256Digest> { Set(try repo.frameRefs(m).map(\.id)) }

    // Proves: a copy holds the same snapshots (same manifests and frame lists, byte for byte),
    // with their verification history and the events, on every pair of backends; it verifies
    // and restores byte-identical in the target.
    @Test(arguments: pairs)
    func copiesSnapshotsHistoryAndEvents(from: Backends, to: Backends) throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: from)
        let t = try to.makeRepository(targetDir)
        let report = try s.repo.copy(manifests.map(\.id), to: t.repo)
        #expect(report.copied == manifests.map(\.id) && report.skipped.isEmpty)
        let distinct = try distinctFrames(s.repo, manifests[0]).union(distinctFrames(s.repo, manifests[1]))
        #expect(report.framesSent == distinct.count)
        #expect(report.eventsCopied == 1 && report.verificationsCopied == 2)
        for m in manifests {
            for name in ["manifest.json", "frames.tsv", "entries.jsonl.zst", "SHA256SUMS"] {
                #expect(try t.stored(RepositoryLayout.snapshotFile(m.id, name)) == s.stored(RepositoryLayout.snapshotFile(m.id, name)), "\(name)")
            }
        }
        // The target's catalog knows it all at once, and so does a catalog rebuilt from it.
        #expect(try t.repo.snapshots().map(\.id) == manifests.map(\.id))
        #expect(try t.repo.events().map(\.name) == ["upgrade"])
        #expect(try Set(t.repo.lastVerifications().keys) == Set(manifests.map(\.id)))
        try t.rebuildCatalog()
        let reopened = try t.reopen()
        #expect(try reopened.events().map(\.name) == ["upgrade"])
        #expect(try Set(reopened.lastVerifications().keys) == Set(manifests.map(\.id)))
        #expect(try reopened.catalog.frameTotals().frames == distinct.count)
        // Verifies in the target, and restores the tree as it was backed up.
        #expect(try reopened.verify(manifests.map(\.id), mode: .full).allSatisfy { $0.passed })
        let restored = try restore(manifests[1].id, of: reopened, in: targetDir, as: "restored")
        let diff = try runProcess("diff", ["-r", sourceDir.sub("src"), restored + "/src"])
        #expect(diff.status == 0, "\(diff.stdoutText)")
    }

    // Proves: a copy sends only the frames the target lacks: the second snapshot's new frames,
    // counted by the puts the target's storage saw.
    @Test(arguments: Backends.allCases)
    func onlyMissingFramesAreSent(backend: Backends) throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: backend)
        let t = try backend.makeRepository(targetDir)
        _ = try s.repo.copy([manifests[0].id], to: t.repo)
        let counting = FaultyBackend(t.base)
        let target = try t.reopen(on: counting)
        let report = try s.repo.copy([manifests[1].id], to: target)
        let old = try distinctFrames(s.repo, manifests[0])
        let new = try distinctFrames(s.repo, manifests[1]).subtracting(old)
        #expect(!new.isEmpty && report.framesSent == new.count)
        #expect(report.framesPresent == (try distinctFrames(s.repo, manifests[1])).count - new.count)
        // The frames, the snapshot's four files, and the one verification record of snapshot 2;
        // the event was copied with the first snapshot.
        #expect(report.eventsCopied == 0 && report.verificationsCopied == 1)
        #expect(counting.puts == new.count + 4 + 1)
    }

    // Proves: copying what the target already holds sends nothing and writes nothing.
    @Test(arguments: Backends.allCases)
    func copyingTwiceIsANoOp(backend: Backends) throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: backend)
        let t = try backend.makeRepository(targetDir)
        _ = try s.repo.copy(manifests.map(\.id), to: t.repo)
        let counting = FaultyBackend(t.base)
        let again = try s.repo.copy(manifests.map(\.id), to: t.reopen(on: counting))
        #expect(again.copied.isEmpty && again.skipped == manifests.map(\.id))
        #expect(again.framesSent == 0 && again.bytesSent == 0 && again.eventsCopied == 0 && again.verificationsCopied == 0)
        #expect(counting.puts == 0)
    }

    // Proves: a dry run writes nothing and predicts what the copy then sends.
    @Test func aDryRunWritesNothingAndPredictsTheCopy() throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: .local)
        let t = try Backends.local.makeRepository(targetDir)
        _ = try s.repo.copy([manifests[0].id], to: t.repo)
        let counting = FaultyBackend(t.base)
        let target = try t.reopen(on: counting)
        let plan = try s.repo.copy(manifests.map(\.id), to: target, options: CopyOptions(dryRun: true))
        #expect(counting.puts == 0 && target.storage.leaseHolder("writer") == nil)
        #expect(plan.copied == [manifests[1].id] && plan.skipped == [manifests[0].id])
        let real = try s.repo.copy(manifests.map(\.id), to: target)
        #expect(plan.framesSent == real.framesSent && plan.framesPresent == real.framesPresent)
        let old = try distinctFrames(s.repo, manifests[0])
        var newSizes: [SHA256Digest: Int] = [:]
        for f in try s.repo.frameRefs(manifests[1]) where !old.contains(f.id) { newSizes[f.id] = f.compressedSize }
        #expect(!newSizes.isEmpty && plan.bytesSent == Int64(newSizes.values.reduce(0, +)))
    }

    // Proves: a corrupt frame in the source stops the copy (65, naming the frame) before the
    // snapshot's manifest: the target keeps what it had and shows no part of the snapshot.
    @Test(arguments: Backends.allCases)
    func aCorruptSourceFrameStopsBeforeTheManifest(backend: Backends) throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: backend)
        let t = try backend.makeRepository(targetDir)
        _ = try s.repo.copy([manifests[0].id], to: t.repo)
        let old = try distinctFrames(s.repo, manifests[0])
        let own = try #require(try s.repo.frameRefs(manifests[1]).first { !old.contains($0.id) })
        let key = RepositoryLayout.frame(own.id)
        var bytes = try s.stored(key)
        bytes[bytes.count / 2] ^= 0x20
        try s.damage(key, with: bytes)
        do {
            _ = try s.repo.copy([manifests[1].id], to: t.repo)
            Issue.record("a corrupt frame was copied")
        } catch let error as CopyError {
            #expect(error.exitStatus == .integrity)
            #expect(String(describing: error).contains(key.rawValue) && String(describing: error).contains(manifests[1].id.rawValue), "\(error)")
        }
        #expect(try !t.base.exists(RepositoryLayout.manifest(manifests[1].id)))
        #expect(try !t.base.exists(key), "the corrupt frame was not stored")
        let reopened = try t.reopen()
        #expect(try reopened.snapshotIDs() == [manifests[0].id])
        #expect(try reopened.verify([manifests[0].id], mode: .full).allSatisfy { $0.passed })
    }

    // Proves: a crash in the middle of a copy (the process killed after the third put) leaves
    // no half snapshot visible in the target, and the next copy completes it, sending only the
    // frames still missing.
    @Test(arguments: Backends.allCases)
    func aCrashedCopyIsResumed(backend: Backends) throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: backend)
        let t = try backend.makeRepository(targetDir)
        let faulty = FaultyBackend(t.base)
        faulty.crashAfterPut(3)
        #expect(throws: (any Error).self) { try s.repo.copy([manifests[0].id], to: t.reopen(on: faulty), options: CopyOptions(parallelTransfers: 1)) }
        #expect(faulty.crashed)
        try t.holderDied()
        let after = try t.reopen()
        #expect(try after.snapshotIDs().isEmpty && after.snapshots().isEmpty)
        let counting = FaultyBackend(t.base)
        let report = try s.repo.copy([manifests[0].id], to: t.reopen(on: counting), warn: { _ in })
        let distinct = try distinctFrames(s.repo, manifests[0])
        #expect(report.copied == [manifests[0].id])
        #expect(report.framesPresent == 3 && report.framesSent == distinct.count - 3)
        #expect(try t.reopen().verify([manifests[0].id], mode: .full).allSatisfy { $0.passed })
    }

    // Proves: a full target disk stops the copy with 74 (an I/O error, never an integrity
    // failure), says to run it again, and shows no part of the snapshot.
    @Test(arguments: Backends.allCases)
    func aFullTargetIs74AndShowsNothing(backend: Backends) throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: backend)
        let t = try backend.makeRepository(targetDir)
        let faulty = FaultyBackend(t.base)
        faulty.failPut(2, errno: ENOSPC)
        do {
            _ = try s.repo.copy([manifests[0].id], to: t.reopen(on: faulty))
            Issue.record("copied onto a full disk")
        } catch {
            #expect(ExitStatus(for: error) == .ioError, "\(error)")
            #expect("\(error)".contains(manifests[0].id.rawValue) && "\(error)".contains("Run the copy again"), "\(error)")
        }
        #expect(try t.reopen().snapshotIDs().isEmpty)
    }

    // Proves: a snapshot ID the target holds with another manifest is not the same snapshot:
    // the copy refuses it (65), naming both repositories, and changes nothing.
    @Test func sameIDWithAnotherManifestIsRefused() throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: .memory)
        let t = try Backends.memory.makeRepository(targetDir)
        _ = try s.repo.copy([manifests[0].id], to: t.repo)
        var other = manifests[0]
        other.tags = ["not-the-same"]
        let changed = Array(try Timestamp.jsonEncoder().encode(other)) + [0x0A]
        try t.damage(RepositoryLayout.manifest(other.id), with: changed)
        do {
            _ = try s.repo.copy([manifests[0].id], to: t.repo)
            Issue.record("a different snapshot under the same ID was accepted")
        } catch let error as CopyError {
            #expect(error.exitStatus == .integrity)
            let text = String(describing: error)
            #expect(text.contains(s.repo.location) && text.contains(t.repo.location) && text.contains(other.id.rawValue), "\(text)")
        }
        #expect(try t.stored(RepositoryLayout.manifest(other.id)) == changed)
    }

    // Proves: a target created with another compression level gets the frames as stored (and
    // the report says so); where it already held a frame compressed otherwise, the copy's frame
    // list gives that frame's size, so the copy verifies and restores there.
    @Test func aTargetWithAnotherCompressionLevel() throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: .local)
        let t = try Repository.create(storage: LocalBackend(root: targetDir.sub("repo")), compressionLevel: 19)
        // The target's own backup of the same tree: same frame IDs, other compressed bytes.
        let own = try FilesystemSnapshotWriter(paths: [sourceDir.sub("src")], options: BackupOptions(source: "s")).write(to: t)
        let shared = try distinctFrames(s.repo, manifests[1]).intersection(Set(SnapshotReader(repository: t, manifest: own).frameList().map(\.id)))
        #expect(!shared.isEmpty)
        let report = try s.repo.copy([manifests[1].id], to: t)
        #expect(report.notes.contains { $0.contains("level 19") && $0.contains("copied as stored") }, "\(report.notes)")
        #expect(report.framesPresent == shared.count)
        #expect(report.notes.contains { $0.contains("compressed otherwise") }, "the target's frames differ in size: \(report.notes)")
        let reopened = try Repository.open(at: targetDir.sub("repo"))
        #expect(try reopened.verify([manifests[1].id], mode: .full).allSatisfy { $0.passed })
        let restored = try restore(manifests[1].id, of: reopened, in: targetDir, as: "restored")
        let diff = try runProcess("diff", ["-r", sourceDir.sub("src"), restored + "/src"])
        #expect(diff.status == 0, "\(diff.stdoutText)")
        // And a second copy knows it is the same snapshot.
        #expect(try s.repo.copy([manifests[1].id], to: reopened).skipped == [manifests[1].id])
    }

    // Proves: repositories whose encryption settings differ (one encrypted, one not) do not
    // share snapshots: the copy is refused (64) before anything is written.
    @Test func differentEncryptionSettingsAreRefused() throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: .memory)
        let recipient = try #require(AgeIdentity.generate().recipient)
        let target = try Repository.create(storage: MemoryBackend(name: "encrypted"), catalogPath: targetDir.sub("catalog.sqlite"),
                                           encryptTo: [recipient], writerKeyPath: targetDir.sub("writer.key"))
        do {
            _ = try s.repo.copy([manifests[0].id], to: target)
            Issue.record("copied into a repository with another encryption setting")
        } catch let error as CopyError {
            #expect(error.exitStatus == .usage)
            #expect(String(describing: error).contains("encryption"), "\(error)")
        }
        #expect(try target.storage.list(under: RepositoryLayout.snapshots).isEmpty)
        #expect(try target.storage.list(under: RepositoryLayout.frames).isEmpty)
    }

    // Proves: a repository is not copied onto itself.
    @Test func aRepositoryIsNotCopiedOntoItself() throws {
        let dir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(dir, on: .local)
        let again = try s.reopen()
        #expect(throws: CopyError.self) { try s.repo.copy([manifests[0].id], to: again) }
    }
}

/// A backend on which a prune removes snapshot `victim` (its manifest, then its frame) at the
/// first read of one of its frames: what a copy meets when the source is pruned under it.
final class PrunedUnderfootBackend: StorageBackend, @unchecked Sendable {
    let inner: StorageBackend
    let victim: SnapshotID
    private var pruned = false

    init(_ inner: StorageBackend, victim: SnapshotID) {
        self.inner = inner
        self.victim = victim
    }

    var location: String { inner.location }
    var defaultCatalogPath: String? { inner.defaultCatalogPath }
    func prepare() throws { try inner.prepare() }
    func open(_ key: StorageKey) throws -> ByteSource {
        if key.isWithin(RepositoryLayout.frames) && !pruned {
            pruned = true
            try inner.delete(RepositoryLayout.manifest(victim))
            try inner.delete(key)
        }
        return try inner.open(key)
    }
    func size(of key: StorageKey) throws -> Int64? { try inner.size(of: key) }
    func put(_ key: StorageKey, _ bytes: [UInt8], mode: PutMode) throws -> PutOutcome { try inner.put(key, bytes, mode: mode) }
    func makeWriter(for key: StorageKey) throws -> ObjectWriter { try inner.makeWriter(for: key) }
    func list(under prefix: StorageKey) throws -> [StorageKey] { try inner.list(under: prefix) }
    func children(of prefix: StorageKey?) throws -> [String] { try inner.children(of: prefix) }
    func delete(_ key: StorageKey) throws { try inner.delete(key) }
    func changeToken(under prefix: StorageKey) -> String? { inner.changeToken(under: prefix) }
    func removeLeftovers(warn: (String) -> Void) throws { try inner.removeLeftovers(warn: warn) }
    func acquireLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                      warn: (String) -> Void) throws -> StorageLease {
        try inner.acquireLease(name, command: command, duration: duration, timeout: timeout, warn: warn)
    }
    func leaseHolder(_ name: String) -> LockHolder? { inner.leaseHolder(name) }
}

extension RepositoryCopyTests {
    // Proves: a snapshot pruned from the source while it is copied stops the copy with a clear
    // error (75: run it again), and nothing of it is committed in the target.
    @Test(arguments: Backends.allCases)
    func aSnapshotPrunedUnderTheCopyIsAClearError(backend: Backends) throws {
        let sourceDir = TemporaryDirectory(), targetDir = TemporaryDirectory()
        let (s, manifests) = try sourceWithHistory(sourceDir, on: backend)
        let t = try backend.makeRepository(targetDir)
        let source = try s.reopen(on: PrunedUnderfootBackend(s.base, victim: manifests[0].id))
        do {
            _ = try source.copy([manifests[0].id], to: t.repo, options: CopyOptions(parallelTransfers: 1))
            Issue.record("copied a snapshot that was pruned")
        } catch let error as CopyError {
            #expect(error.exitStatus == .lockHeld)
            #expect(String(describing: error).contains("removed from") && String(describing: error).contains(manifests[0].id.rawValue), "\(error)")
        }
        #expect(try t.reopen().snapshotIDs().isEmpty)
    }
}
