import Foundation
import Testing
@testable import Backstop

/// The `StorageBackend` protocol's promises, checked on every backend alike: what a repository
/// relies on (atomic and create-only puts, invisible writers, sorted listings, leases) must not
/// depend on where it is stored.
@Suite struct StorageBackendTests {
    func prepared(_ backend: Backends, _ dir: TemporaryDirectory) throws -> StorageBackend {
        let storage = backend.makeStorage(dir)
        try storage.prepare()
        return storage
    }

    @Test(arguments: Backends.allCases)
    func replaceSwapsTheWholeObjectAndCreateOnlyLeavesTheOldBytes(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        let key = StorageKey("events", "e.json")
        #expect(try storage.put(key, [1, 2, 3], mode: .replace) == .stored)
        #expect(try storage.put(key, [4, 5], mode: .replace) == .stored)
        #expect(try storage.read(key) == [4, 5])
        #expect(try storage.put(key, [9, 9, 9, 9], mode: .createOnly) == .alreadyPresent)
        #expect(try storage.read(key) == [4, 5])
        #expect(try storage.put(StorageKey("events", "f.json"), [7], mode: .createOnly) == .stored)
        #expect(try storage.read(StorageKey("events", "f.json")) == [7])
    }

    @Test(arguments: Backends.allCases)
    func aWriterIsInvisibleUntilItCommitsAndAnAbortLeavesNothing(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        let key = StorageKey("snapshots", "20240324T220000Z-1a2b3c4d", "data.zst")
        let writer = try storage.makeWriter(for: key)
        try writer.write(Array(repeating: 7, count: 100_000))
        try writer.finish()
        #expect(try !storage.exists(key))
        #expect(try storage.list(under: StorageKey("snapshots")).isEmpty)
        #expect(try writer.commit(mode: .createOnly) == .stored)
        #expect(try storage.read(key) == Array(repeating: 7, count: 100_000))

        let dropped = try storage.makeWriter(for: StorageKey("snapshots", "20240324T220000Z-1a2b3c4d", "other"))
        try dropped.write([1, 2, 3])
        try dropped.finish()
        dropped.abort()
        dropped.abort()   // idempotent
        #expect(try storage.list(under: StorageKey("snapshots")) == [key])
        if let local = storage as? LocalBackend {
            #expect(try FileSystem.list(local.root + "/tmp").isEmpty, "the aborted writer's temporary file is gone")
        }
    }

    @Test(arguments: Backends.allCases)
    func listingsAreRecursiveAndSortedAndChildrenOneLevel(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        for name in ["snapshots/b/2", "snapshots/a/z/1", "snapshots/a/y", "snapshots/c", "events/x.json"] {
            try storage.put(StorageKey(validating: name)!, Array(name.utf8), mode: .createOnly)
        }
        #expect(try storage.list(under: StorageKey("snapshots")).map(\.rawValue)
                == ["snapshots/a/y", "snapshots/a/z/1", "snapshots/b/2", "snapshots/c"])
        #expect(try storage.list(under: StorageKey("snapshots", "a")).map(\.rawValue) == ["snapshots/a/y", "snapshots/a/z/1"])
        #expect(try storage.list(under: StorageKey("nothing-here")).isEmpty)
        #expect(try storage.children(of: StorageKey("snapshots")) == ["a", "b", "c"])
        #expect(try storage.children(of: StorageKey("snapshots", "a")) == ["y", "z"])
        #expect(try storage.children(of: StorageKey("nothing-here")).isEmpty)
        let top = try storage.children(of: nil)
        #expect(top.contains("snapshots") && top.contains("events"))
        #expect(top == top.sorted())
    }

    @Test(arguments: Backends.allCases)
    func deletingTheLastObjectOfAPrefixRemovesThePrefixAndAbsentIsFine(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        let a = StorageKey("snapshots", "20240324T220000Z-1a2b3c4d", "manifest.json")
        let b = StorageKey("snapshots", "20240324T220000Z-1a2b3c4d", "SHA256SUMS")
        try storage.put(a, [1], mode: .createOnly)
        try storage.put(b, [2], mode: .createOnly)
        try storage.delete(a)
        #expect(try storage.children(of: StorageKey("snapshots")) == ["20240324T220000Z-1a2b3c4d"])
        try storage.delete(b)
        #expect(try storage.children(of: StorageKey("snapshots")).isEmpty)
        try storage.delete(b)   // absent: not an error
        try storage.delete(StorageKey("never", "there"))
        if let local = storage as? LocalBackend {
            // The empty `snapshots/<id>/` folder went; the top-level folder stays.
            #expect(!FileSystem.exists(local.path(of: StorageKey("snapshots", "20240324T220000Z-1a2b3c4d"))))
            #expect(FileSystem.isDirectory(local.path(of: StorageKey("snapshots"))))
        }
    }

    @Test(arguments: Backends.allCases)
    func rangedReadsAndSizesAndAMissingObject(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        let key = StorageKey("snapshots", "x", "data.zst")
        let bytes = (0..<200).map { UInt8($0) }
        try storage.put(key, bytes, mode: .createOnly)
        #expect(try storage.size(of: key) == 200)
        let source = try storage.open(key)
        #expect(source.size == 200)
        #expect(try source.read(at: 3, count: 4) == [3, 4, 5, 6])
        #expect(try source.read(at: 196, count: 4) == [196, 197, 198, 199])
        #expect(throws: (any Error).self) { try source.read(at: 198, count: 4) }
        let missing = StorageKey("snapshots", "x", "absent")
        #expect(try storage.size(of: missing) == nil)
        #expect(try !storage.exists(missing))
        do {
            _ = try storage.open(missing)
            Issue.record("opened an absent object")
        } catch {
            #expect(ExitStatus(for: error) == .ioError)
            #expect("\(error)".contains("absent"), "names the object: \(error)")
        }
    }

    @Test(arguments: Backends.allCases)
    func aLeaseExcludesAndTheTimeoutNamesItsHolder(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        let first = try storage.acquireLease("writer", command: "first", duration: 60, timeout: 0, warn: { _ in })
        #expect(storage.leaseHolder("writer")?.command == "first")
        do {
            _ = try storage.acquireLease("writer", command: "second", duration: 60, timeout: 0.2, warn: { _ in })
            Issue.record("a second lease was granted")
        } catch let error as RepositoryError {
            guard case let .lockHeld(_, holder, waited, _) = error else { Issue.record("\(error)"); return }
            #expect(holder.command == "first" && holder.pid == getpid())
            #expect(waited >= 0.2)
            #expect(error.exitStatus == .lockHeld)
            #expect(error.description.contains("first"), "\(error)")
        }
        first.release()
        first.release()   // twice is fine
        #expect(storage.leaseHolder("writer") == nil)
        let third = try storage.acquireLease("writer", command: "third", duration: 60, timeout: 0, warn: { _ in })
        third.release()
    }

    /// Plants the lease record of a writer on another host.
    func plantForeignLease(_ storage: StorageBackend, expiresAt: Date?) throws {
        let holder = LockHolder(host: "other-host.example", pid: 4242, startedAt: Date(timeIntervalSinceNow: -7200),
                                command: "backup on another host", expiresAt: expiresAt)
        switch storage {
        case let memory as MemoryBackend:
            memory.setLease("writer", to: holder)
        case let local as LocalBackend:
            try writeFile(local.root + "/locks/writer.lock", Array(try Timestamp.jsonEncoder().encode(holder)))
        case let s3 as S3Backend:
            try s3.put(StorageKey("locks", "writer", "other-host.example-4242-1.json"), Array(try Timestamp.jsonEncoder().encode(holder)), mode: .replace)
        default:
            Issue.record("unknown backend")
        }
    }

    @Test(arguments: Backends.allCases)
    func anExpiredLeaseOfAnotherHostIsBrokenWithAWarning(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        try plantForeignLease(storage, expiresAt: Date(timeIntervalSinceNow: -60))
        var warnings: [String] = []
        let lease = try storage.acquireLease("writer", command: "mine", duration: 60, timeout: 0, warn: { warnings.append($0) })
        #expect(lease.holder.command == "mine")
        #expect(storage.leaseHolder("writer")?.command == "mine")
        #expect(warnings.count == 1)
        #expect(warnings.first.map { $0.contains("backup on another host") && $0.contains("expired") } == true, "\(warnings)")
        lease.release()
    }

    @Test(arguments: Backends.allCases)
    func aLeaseOfAnotherHostWithoutExpiryIsNotBroken(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        try plantForeignLease(storage, expiresAt: nil)
        var warnings: [String] = []
        #expect {
            _ = try storage.acquireLease("writer", command: "mine", duration: 60, timeout: 0.1, warn: { warnings.append($0) })
        } throws: { error in
            guard case let RepositoryError.lockHeld(_, holder, _, _) = error else { return false }
            return holder.host == "other-host.example"
        }
        #expect(warnings.isEmpty)
        #expect(storage.leaseHolder("writer")?.command == "backup on another host")
    }

    @Test(arguments: Backends.allCases)
    func renewalExtendsTheExpiry(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let storage = try prepared(backend, dir)
        let lease = try storage.acquireLease("writer", command: "long prune", duration: 60, timeout: 0, warn: { _ in })
        let before = try #require(storage.leaseHolder("writer")?.expiresAt)
        usleep(20_000)
        try lease.renew()
        let after = try #require(storage.leaseHolder("writer")?.expiresAt)
        #expect(after > before)
        // The record keeps milliseconds (a local lock file is JSON).
        #expect(abs(try #require(lease.holder.expiresAt).timeIntervalSince(after)) < 0.001)
        #expect(storage.leaseHolder("writer")?.command == "long prune")
        lease.release()
    }
}

/// What only a local directory can meet: foreign files where objects are, and other processes'
/// temporary files. About the local disk, so local only.
@Suite struct LocalBackendTests {
    @Test(arguments: ["symlink", "directory"])
    func somethingElseThanAFileAtAnObjectsKeyIsRefused(kind: String) throws {
        let dir = TemporaryDirectory()
        let storage = LocalBackend(root: dir.sub("repo"))
        try storage.prepare()
        let key = StorageKey("snapshots", "20240324T220000Z-1a2b3c4d", "manifest.json")
        try writeFile(dir.sub("elsewhere"), Array("secret".utf8))
        try FileSystem.makeDirectory(storage.path(of: key.parent!))
        if kind == "symlink" {
            #expect(symlink(dir.sub("elsewhere"), storage.path(of: key)) == 0)
        } else {
            try FileSystem.makeDirectory(storage.path(of: key))
        }
        for attempt in [{ _ = try storage.open(key) }, { _ = try storage.size(of: key) }] {
            do {
                try attempt()
                Issue.record("a \(kind) was taken for an object")
            } catch let error as FileError {
                guard case let .notRegular(path) = error else { Issue.record("\(error)"); continue }
                #expect(path == storage.path(of: key))
                #expect(error.exitStatus == .integrity)
                #expect(ExitStatus(for: error).rawValue == 65)
            }
        }
    }

    @Test func temporaryFilesOfLiveWritersSurviveAndTheDeadsGo() throws {
        let dir = TemporaryDirectory()
        let storage = LocalBackend(root: dir.sub("repo"))
        try storage.prepare()
        let host = ProcessIdentity.hostName
        let tmp = storage.root + "/tmp/"
        let mine = "put-\(getpid())-1-\(host)"
        let parent = "put-\(getppid())-2-\(host)"
        let dead = "put-\(try deadPID())-3-\(host)"
        let foreignFresh = "put-4242-4-other-host.example"
        let foreignOld = "put-4242-5-another-host.example"
        let olderVersion = "20240324T220000Z-1a2b3c4d"
        for name in [mine, parent, dead, foreignFresh, foreignOld] { try writeFile(tmp + name, [1]) }
        try writeFile(tmp + olderVersion + "/data.zst", [1])
        setMTime(tmp + foreignOld, Int(Date().timeIntervalSince1970) - 7200)
        var warnings: [String] = []
        try storage.removeLeftovers(warn: { warnings.append($0) })
        #expect(try FileSystem.list(storage.root + "/tmp") == [mine, parent, foreignFresh].sorted())
        #expect(warnings.count == 3)
        #expect(warnings.contains { $0.contains(dead) })
    }
}
