import Foundation
import Testing
@testable import Backstop

/// The fault matrix, through `FaultyBackend` on both real backends: a full disk at every put of a
/// backup and during prune, a crash after every put of a backup and after every delete of a
/// prune, and unreadable, short or rotten reads. What each proves: no half snapshot is ever
/// visible, nothing stored before is lost, the error has the documented exit status, and the
/// next writer cleans up what a crash left.
@Suite struct FaultMatrixTests {
    static let t0 = Date(timeIntervalSince1970: 1_711_317_600)

    /// A repository through a `FaultyBackend`, holding one earlier snapshot of `dir/src`.
    func repositoryWithOneSnapshot(_ backend: Backends, _ dir: TemporaryDirectory) throws -> (TestRepository, FaultyBackend, Manifest) {
        var faulty: FaultyBackend!
        let t = try backend.makeRepository(dir, wrap: { faulty = FaultyBackend($0); return faulty })
        try writeSourceTree(dir)
        let earlier = try backUp(dir, to: t.repo, time: Self.t0)
        return (t, faulty, earlier)
    }

    /// How many puts one backup of `dir/src` makes (measured, not assumed).
    func putsPerBackup(_ backend: Backends) throws -> Int {
        let dir = TemporaryDirectory()
        let (t, faulty, _) = try repositoryWithOneSnapshot(backend, dir)
        let before = faulty.puts
        try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(60))
        return faulty.puts - before
    }

    /// Every committed snapshot passes a full verification, the catalog of a fresh open lists
    /// exactly the committed ones, and `expected` are among them.
    func expectIntact(_ t: TestRepository, including expected: [SnapshotID], _ context: String) throws {
        let reopened = try t.reopen()
        let committed = try reopened.snapshotIDs()
        for id in expected { #expect(committed.contains(id), "\(context): \(id) was lost") }
        for id in committed {
            let r = Verifier(repository: reopened, id: id).verify(mode: .full)
            #expect(r.passed, "\(context): \(id): \(r.problems)")
        }
        #expect(try reopened.catalog.snapshots().map(\.id).sorted() == committed, "\(context)")
        // A catalog that never saw the command (this process's catalog ran on after the
        // simulated crash; a killed one would not have): reconciled from the repository alone.
        let fresh = try t.reopen(catalogPath: t.dir.sub("fresh-\(UInt32.random(in: 0...UInt32.max)).sqlite"))
        #expect(try fresh.catalog.snapshots().map(\.id).sorted() == committed, "\(context)")
    }

    /// No key under `snapshots/` belongs to anything but a committed snapshot.
    func expectNoIncomplete(_ storage: StorageBackend, _ context: String) throws {
        let states = RepositoryLayout.snapshotStates(try storage.list(under: RepositoryLayout.snapshots))
        #expect(states.incomplete.isEmpty, "\(context): incomplete \(states.incomplete)")
    }

    // MARK: - Disk full

    @Test(arguments: Backends.allCases)
    func aDiskFullAtEachPutOfABackupCommitsNothingAndLosesNothing(backend: Backends) throws {
        let puts = try putsPerBackup(backend)
        #expect(puts >= 4, "payload, entry list, SHA256SUMS and manifest")
        for n in 1...puts {
            let dir = TemporaryDirectory()
            let (t, faulty, earlier) = try repositoryWithOneSnapshot(backend, dir)
            faulty.failPut(n)
            do {
                try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(60))
                Issue.record("put \(n): the backup succeeded on a full disk")
            } catch {
                #expect(ExitStatus(for: error) == .ioError, "put \(n): \(error)")
                #expect("\(error)".contains("free some space"), "put \(n): \(error)")
            }
            #expect(try t.repo.snapshotIDs() == [earlier.id], "put \(n)")
            try expectNoIncomplete(t.base, "put \(n)")
            try expectIntact(t, including: [earlier.id], "put \(n)")
            #expect(try t.reopen().snapshotIDs() == [earlier.id])
        }
    }

    /// How many bytes one backup of `dir/src` writes (measured).
    func bytesPerBackup(_ backend: Backends) throws -> Int64 {
        let dir = TemporaryDirectory()
        let (t, faulty, _) = try repositoryWithOneSnapshot(backend, dir)
        faulty.freeSpace = 1 << 40
        try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(60))
        return (1 << 40) - faulty.freeSpace!
    }

    @Test(arguments: Backends.allCases)
    func aDiskThatFillsWhileTheBackupWritesCommitsNothing(backend: Backends) throws {
        let used = try bytesPerBackup(backend)
        #expect(used > 1000)
        for free: Int64 in [0, 1, used / 2, used * 9 / 10] {
            let dir = TemporaryDirectory()
            let (t, faulty, earlier) = try repositoryWithOneSnapshot(backend, dir)
            faulty.freeSpace = free
            #expect(throws: (any Error).self, "\(free) bytes free") {
                do {
                    try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(60))
                } catch {
                    #expect(ExitStatus(for: error) == .ioError, "\(free) bytes free: \(error)")
                    throw error
                }
            }
            #expect(try t.repo.snapshotIDs() == [earlier.id])
            try expectNoIncomplete(t.base, "\(free) bytes free")
            try expectIntact(t, including: [earlier.id], "\(free) bytes free")
        }
    }

    /// Three daily snapshots, each verified (so the prune also deletes verification history); a
    /// plan that keeps the newest.
    func repositoryToPrune(_ backend: Backends, _ dir: TemporaryDirectory) throws -> (TestRepository, FaultyBackend, [SnapshotID], RetentionPlan) {
        var faulty: FaultyBackend!
        let t = try backend.makeRepository(dir, wrap: { faulty = FaultyBackend($0); return faulty })
        try writeSourceTree(dir)
        var ids: [SnapshotID] = []
        for day in 0..<3 { ids.append(try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(Double(day) * 86_400)).id) }
        #expect(try t.repo.verify(ids, mode: .quick).allSatisfy(\.passed))
        let plan = try t.repo.retentionPlan(RetentionPolicy(keepLast: 1), timeZone: TimeZone(identifier: "UTC")!,
                                            now: Self.t0.addingTimeInterval(3 * 86_400))
        #expect(plan.remove.map(\.id).sorted() == Array(ids.prefix(2)))
        return (t, faulty, ids, plan)
    }

    func prune(_ repo: Repository, _ plan: RetentionPlan) throws {
        try repo.withWriterLock(command: "prune", timeout: 0, warn: { _ in }) { _ = try repo.prune(plan) }
    }

    /// How many deletes the prune of `repositoryToPrune` makes.
    func deletesPerPrune(_ backend: Backends) throws -> Int {
        let dir = TemporaryDirectory()
        let (t, faulty, ids, plan) = try repositoryToPrune(backend, dir)
        let before = faulty.deletes
        try prune(t.repo, plan)
        #expect(try t.repo.snapshotIDs() == [ids[2]])
        return faulty.deletes - before
    }

    @Test(arguments: Backends.allCases)
    func aDiskFullAtEachDeleteOfAPruneLeavesWholeSnapshotsAndTheNextPruneFinishes(backend: Backends) throws {
        let deletes = try deletesPerPrune(backend)
        #expect(deletes >= 2 * 5, "two snapshots of 4 objects and a verification each")
        for n in 1...deletes {
            let dir = TemporaryDirectory()
            let (t, faulty, ids, plan) = try repositoryToPrune(backend, dir)
            faulty.failDelete(n, errno: ENOSPC)
            do {
                try prune(t.repo, plan)
                Issue.record("delete \(n): the prune succeeded")
            } catch {
                #expect(ExitStatus(for: error) == .ioError, "delete \(n): \(error)")
            }
            try expectIntact(t, including: [ids[2]], "delete \(n)")
            // The next prune (a new process, the disk freed) finishes the job.
            let next = try t.reopen(on: faulty)
            try prune(next, try next.retentionPlan(RetentionPolicy(keepLast: 1), timeZone: TimeZone(identifier: "UTC")!,
                                                   now: Self.t0.addingTimeInterval(3 * 86_400)))
            #expect(try next.snapshotIDs() == [ids[2]], "delete \(n)")
            try expectNoIncomplete(t.base, "delete \(n)")
            try expectIntact(t, including: [ids[2]], "delete \(n)")
        }
    }

    // MARK: - Crashes

    @Test(arguments: Backends.allCases)
    func aCrashAfterEachPutOfABackupLeavesNoHalfSnapshot(backend: Backends) throws {
        let puts = try putsPerBackup(backend)
        for n in 1...puts {
            let dir = TemporaryDirectory()
            let (t, faulty, earlier) = try repositoryWithOneSnapshot(backend, dir)
            faulty.crashAfterPut(n)
            var crashedBackup: Manifest?
            do {
                try t.repo.withWriterLock(command: "backup", timeout: 0, warn: { _ in }) {
                    crashedBackup = try backUp(dir, to: t.repo, time: Self.t0.addingTimeInterval(60))
                }
            } catch is SimulatedCrash {
            }
            #expect(faulty.crashed, "put \(n)")
            #expect((crashedBackup != nil) == (n == puts), "only the last put (the manifest) commits: put \(n)")

            // A new process: the killed writer's lease is stale, its leftovers are there.
            try t.holderDied()
            let after = try t.reopen()
            let committed = try after.snapshotIDs()
            #expect(committed == [earlier.id] || committed.count == 2, "put \(n): \(committed)")
            try expectIntact(t, including: [earlier.id], "put \(n)")
            if let crashedBackup { #expect(committed.contains(crashedBackup.id)) }

            var warnings: [String] = []
            try after.withWriterLock(command: "next", timeout: 0, warn: { warnings.append($0) }) {}
            #expect(warnings.contains { $0.contains("stale") }, "put \(n): \(warnings)")
            if n < puts {
                #expect(warnings.contains { $0.contains("incomplete snapshot") }, "put \(n): \(warnings)")
            }
            try expectNoIncomplete(t.base, "put \(n)")
            #expect(try after.snapshotIDs() == committed)
            try expectIntact(t, including: committed, "put \(n)")
        }
    }

    @Test(arguments: Backends.allCases)
    func aCrashAfterEachDeleteOfAPruneLeavesNoHalfSnapshot(backend: Backends) throws {
        let deletes = try deletesPerPrune(backend)
        for n in 1...deletes {
            let dir = TemporaryDirectory()
            let (t, faulty, ids, plan) = try repositoryToPrune(backend, dir)
            faulty.crashAfterDelete(n)
            do { try prune(t.repo, plan) } catch is SimulatedCrash {}
            #expect(faulty.crashed, "delete \(n)")

            try t.holderDied()
            let after = try t.reopen()
            let committed = try after.snapshotIDs()
            #expect(committed.contains(ids[2]), "delete \(n): the kept snapshot")
            try expectIntact(t, including: [ids[2]], "delete \(n)")
            try after.withWriterLock(command: "next", timeout: 0, warn: { _ in }) {}
            try expectNoIncomplete(t.base, "delete \(n)")
            try expectIntact(t, including: committed, "delete \(n)")
            // The next prune finishes it.
            try prune(after, try after.retentionPlan(RetentionPolicy(keepLast: 1), timeZone: TimeZone(identifier: "UTC")!,
                                                     now: Self.t0.addingTimeInterval(3 * 86_400)))
            #expect(try after.snapshotIDs() == [ids[2]])
            let history = try t.base.list(under: RepositoryLayout.verifications).map { $0.components[1] }
            #expect(Set(history) == [ids[2].rawValue], "delete \(n): only the kept snapshot's history remains")
        }
    }

    // MARK: - Reads

    enum ReadFault: String, CaseIterable, Sendable {
        case eioOnOpen, eioOnRead, shortRead, bitFlip
    }

    @Test(arguments: Backends.allCases, ReadFault.allCases)
    func aFaultyReadFailsVerificationNamingTheFileAndRestoreWritesNothing(backend: Backends, fault: ReadFault) throws {
        let dir = TemporaryDirectory()
        let (t, faulty, m) = try repositoryWithOneSnapshot(backend, dir)
        for file in m.files.map(\.name) + ["manifest.json", "SHA256SUMS"] {
            let key = RepositoryLayout.snapshotFile(m.id, file)
            let size = try #require(try t.base.size(of: key))
            faulty.clearRules()
            switch fault {
            case .eioOnOpen: faulty.failReads(of: key, when: .open)
            case .eioOnRead: faulty.failReads(of: key, when: .read)
            case .shortRead: faulty.shortenReads(of: key, to: size / 2)
            case .bitFlip: faulty.flipBit(of: key, at: size / 2, bit: 3)
            }
            for mode in VerificationMode.allCases {
                let r = Verifier(repository: t.repo, id: m.id).verify(mode: mode)
                #expect(!r.passed, "\(file) \(mode): undetected")
                #expect(r.problems.contains { $0.file == file || $0.message.contains(file) }, "\(file) \(mode): \(r.problems)")
            }
            let target = dir.sub("restored-\(file)")
            do {
                _ = try FilesystemRestore(repository: t.repo, manifest: m).run(to: target)
                Issue.record("\(file): restored through a \(fault) fault")
            } catch {
                // An unreadable repository is an I/O error (74), not evidence of damage;
                // what was read and is wrong (short, flipped) is an integrity failure (65).
                let expected: Backstop.ExitStatus = fault == .eioOnOpen || fault == .eioOnRead ? .ioError : .integrity
                #expect(ExitStatus(for: error) == expected, "\(file): \(error)")
                #expect("\(error)".contains(file), "\(file): \(error)")
            }
            #expect(!FileSystem.exists(target), "\(file): the target was written")
        }
        faulty.clearRules()
        #expect(Verifier(repository: t.repo, id: m.id).verify(mode: .full).passed, "the stored snapshot itself was never damaged")
    }

    /// An EIO is no evidence about the data: a restore that meets one exits 74 and records no
    /// failed verification (other hosts share the history, and would pass the snapshot over),
    /// and `verify` reports the problem without recording it.
    @Test(arguments: Backends.allCases, [FaultyBackend.ReadStage.open, .read])
    func anUnreadableRepositoryIsAnIOErrorAndMarksNothingBad(backend: Backends, stage: FaultyBackend.ReadStage) throws {
        let dir = TemporaryDirectory()
        let (t, faulty, m) = try repositoryWithOneSnapshot(backend, dir)
        for file in m.files.map(\.name) + ["manifest.json", "SHA256SUMS"] {
            faulty.clearRules()
            faulty.failReads(of: RepositoryLayout.snapshotFile(m.id, file), when: stage)
            let target = dir.sub("restored-\(file)")
            do {
                _ = try t.repo.restore(candidates: [m.id], request: RestoreRequest(target: target), fallback: true) { _ in }
                Issue.record("\(file): restored through an EIO")
            } catch {
                #expect(ExitStatus(for: error) == .ioError, "\(file): \(error)")
                #expect("\(error)".contains(file) && "\(error)".contains(String(cString: strerror(EIO))), "\(file): \(error)")
            }
            #expect(!FileSystem.exists(target))
            var warnings: [String] = []
            let results = try t.repo.verify([m.id], mode: .full, warn: { warnings.append($0) })
            #expect(results.count == 1 && !results[0].passed)
            #expect(results.first?.problems.contains { $0.file == file && $0.isReadFailure } == true, "\(file): \(results.first?.problems ?? [])")
            #expect(try t.repo.lastVerifications()[m.id] == nil, "\(file): an I/O error was recorded as damage")
            #expect(try t.reopen().lastVerifications()[m.id] == nil)
        }
    }

    /// The same for one frame of the payload (the seek table reads fine), for both kinds of
    /// snapshot: a whole restore meets the EIO mid-stream.
    @Test(arguments: Backends.allCases, [SnapshotKind.filesystem, .logical])
    func anUnreadableFrameIsAnIOErrorAndMarksNothingBad(backend: Backends, kind: SnapshotKind) throws {
        let dir = TemporaryDirectory()
        var faulty: FaultyBackend!
        let t = try backend.makeRepository(dir, wrap: { faulty = FaultyBackend($0); return faulty })
        let m: Manifest
        if kind == .filesystem {
            try writeSourceTree(dir, big: true)
            m = try backUp(dir, to: t.repo, time: Self.t0)
        } else {
            var gen = SeededBytes(seed: 9)
            try writeFile(dir.sub("dump.bin"), gen.text(5_000_000))
            let fd = open(dir.sub("dump.bin"), O_RDONLY)
            defer { close(fd) }
            m = try LogicalSnapshotWriter(input: .fileDescriptor(fd), format: .raw, options: BackupOptions(source: "db")).write(to: t.repo)
        }
        let frames = try SnapshotReader(repository: t.repo, manifest: m).frameList()
        #expect(frames.count >= 2)
        #expect(Set(frames.map(\.id)).count == frames.count, "frame 1 is used once")
        faulty.failReads(of: RepositoryLayout.frame(frames[1].id))
        let target = dir.sub(kind == .filesystem ? "restored" : "restored.sql")
        do {
            _ = try t.repo.restore(candidates: [m.id], request: RestoreRequest(target: target), fallback: true) { _ in }
            Issue.record("restored through an EIO")
        } catch {
            #expect(ExitStatus(for: error) == .ioError, "\(error)")
            #expect("\(error)".contains(m.payloadName) && "\(error)".contains("frame 1"), "\(error)")
        }
        #expect(!FileSystem.exists(target))
        #expect(try t.repo.lastVerifications()[m.id] == nil, "an I/O error was recorded as damage")
        let results = try t.repo.verify([m.id], mode: .full, warn: { _ in })
        #expect(results.first?.problems.contains { $0.file == m.payloadName && $0.isReadFailure } == true, "\(results.first?.problems ?? [])")
        #expect(try t.repo.lastVerifications()[m.id] == nil)
        faulty.clearRules()
        _ = try t.repo.restore(candidates: [m.id], request: RestoreRequest(target: target), fallback: false) { _ in }
        #expect(FileSystem.exists(target), "restores once the storage reads again")
    }
}
