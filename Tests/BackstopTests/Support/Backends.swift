import Foundation
import Testing
@testable import Backstop

/// The backends every repository test that is not about the local disk runs on
/// (`@Test(arguments: Backends.allCases)`).
enum Backends: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case local, memory
    /// A fresh prefix of the bucket of a local moto server (`S3Server`): not in the fast tier.
    case s3

    static var allCases: [Backends] { TestTier.isFast ? [.local, .memory] : [.local, .memory, .s3] }

    var testDescription: String { rawValue }

    /// A fresh, empty backend in `dir` (a local one at `dir/repo`).
    func makeStorage(_ dir: TemporaryDirectory) -> StorageBackend {
        switch self {
        case .local: return LocalBackend(root: dir.sub("repo"))
        case .memory: return MemoryBackend(name: "test")
        case .s3:
            do { return try S3Server.shared(.moto).backend() } catch {
                Issue.record("the S3 server did not start: \(error)")
                return MemoryBackend(name: "no S3 server")
            }
        }
    }

    /// A new repository on this backend, in `dir`; `wrap` puts a wrapper (a `FaultyBackend`)
    /// between the repository and the backend.
    func makeRepository(_ dir: TemporaryDirectory, wrap: ((StorageBackend) -> StorageBackend)? = nil) throws -> TestRepository {
        let base = makeStorage(dir)
        let storage = wrap?(base) ?? base
        let catalogPath = base.defaultCatalogPath ?? dir.sub("catalog.sqlite")
        let repo = try Repository.create(storage: storage, catalogPath: catalogPath)
        return TestRepository(dir: dir, base: base, catalogPath: catalogPath, repo: repo)
    }
}

/// A repository made by `Backends.makeRepository`, with what a test needs to reopen or damage it.
struct TestRepository {
    let dir: TemporaryDirectory
    /// The real backend (below any wrapper).
    let base: StorageBackend
    let catalogPath: String
    let repo: Repository

    var storage: StorageBackend { repo.storage }

    /// Opens the repository again (a new process would): on `storage`, by default the real
    /// backend, with the same catalog file, or another one.
    func reopen(on storage: StorageBackend? = nil, catalogPath: String? = nil) throws -> Repository {
        try Repository.open(storage: storage ?? base, catalogPath: catalogPath ?? self.catalogPath)
    }

    /// Rebuilds the catalog from the repository alone.
    @discardableResult
    func rebuildCatalog() throws -> ReconcileReport {
        try Repository.rebuildCatalog(storage: base, catalogPath: catalogPath)
    }

    /// Replaces the stored bytes of `key` behind the backend's back (nil removes it).
    func damage(_ key: StorageKey, with bytes: [UInt8]?) throws {
        switch base {
        case let memory as MemoryBackend:
            memory.overwrite(key, with: bytes)
        case let local as LocalBackend:
            let path = local.path(of: key)
            if let bytes {
                unlink(path)
                try writeFile(path, bytes)
            } else {
                #expect(unlink(path) == 0)
            }
        case let s3 as S3Backend:
            if let bytes { try s3.put(key, bytes, mode: .replace) } else { try s3.delete(key) }
        default:
            preconditionFailure("no way to damage \(base.location)")
        }
    }

    /// The stored bytes of `key`, read from the real backend.
    func stored(_ key: StorageKey) throws -> [UInt8] { try base.read(key) }

    /// What a writer that was killed leaves of its lease: its record stays. Makes it one the next
    /// writer may break (a dead process of this host; an expired lease in memory), as a later
    /// process would find it.
    func holderDied() throws {
        let dead = try deadPID()
        switch base {
        case let memory as MemoryBackend:
            if let holder = memory.leaseHolder("writer") {
                var expired = holder
                expired.expiresAt = Date(timeIntervalSinceNow: -1)
                memory.setLease("writer", to: expired)
            }
        case let local as LocalBackend:
            let lockFile = local.root + "/locks/writer.lock"
            if let holder = local.leaseHolder("writer") {
                var gone = holder
                gone.pid = dead
                unlink(lockFile)
                try writeFile(lockFile, Array(try Timestamp.jsonEncoder().encode(gone)))
            }
        case let s3 as S3Backend:
            // A killed process of this host leaves its lease object: the same holder, a pid that is gone.
            for key in try s3.list(under: StorageKey("locks", "writer")) {
                var gone = try Timestamp.jsonDecoder().decode(LockHolder.self, from: Data(s3.read(key)))
                gone.pid = dead
                try s3.put(key, Array(try Timestamp.jsonEncoder().encode(gone)), mode: .replace)
            }
        default:
            preconditionFailure("no lease to expire on \(base.location)")
        }
    }
}

/// A pid that existed and is gone: a child that already exited.
func deadPID() throws -> Int32 {
    let child = try runProcess("/bin/sh", ["-c", "echo $$"])
    return Int32(child.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))!
}

/// Random-ish files to back up under `dir/src`, big enough for several frames when `big`.
func writeSourceTree(_ dir: TemporaryDirectory, seed: UInt64 = 1, big: Bool = false) throws {
    var gen = SeededBytes(seed: seed)
    for i in 0..<4 { try writeFile(dir.sub("src/f\(i).dat"), big ? gen.text(700_000) : gen.bytes(2_000 + i * 100)) }
    try writeFile(dir.sub("src/sub/small.txt"), Array("small\n".utf8))
}

/// A filesystem snapshot of `dir/src`.
@discardableResult
func backUp(_ dir: TemporaryDirectory, to repo: Repository, source: String = "s", time: Date? = nil, tags: [String] = []) throws -> Manifest {
    var options = BackupOptions(source: source, tags: tags)
    options.time = time
    return try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
}
