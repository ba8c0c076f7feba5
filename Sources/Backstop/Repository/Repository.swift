import Foundation

/// A Backstop repository on a storage backend, laid out as `RepositoryLayout` describes.
///
/// Only `Repository` and `Catalog` change what is stored, and only through `storage` (keys,
/// never paths). Opening a repository reconciles the catalog with the committed snapshots (a
/// listing of `snapshots/`), so a crash between a snapshot's commit and its catalog insert loses
/// nothing.
public final class Repository {
    public let storage: StorageBackend
    public let config: RepositoryConfig
    public let catalog: Catalog
    /// What the reconcile on open changed.
    public let reconciled: ReconcileReport

    /// Where the repository is, for messages: a local path or a URL.
    public var location: String { storage.location }

    private init(storage: StorageBackend, config: RepositoryConfig, catalog: Catalog, reconciled: ReconcileReport) {
        self.storage = storage
        self.config = config
        self.catalog = catalog
        self.reconciled = reconciled
    }

    /// How long a writer's lease lasts without renewal; it is renewed every fifth of that while
    /// the writer works. Only another host ever waits for an expiry (see `LockHolder.staleness`).
    public static let leaseDuration: TimeInterval = 600

    // MARK: - Create and open

    /// Creates a repository in the local directory `path` (an empty or missing directory). A
    /// directory that holds anything else is refused unless `force` (its files are then left as
    /// they are, beside the repository's).
    @discardableResult
    public static func create(at path: String, compressionLevel: Int32 = 3, force: Bool = false,
                              encryptTo recipients: [AgeRecipient] = [], writerKeyPath: String? = nil) throws -> Repository {
        let local = LocalBackend(root: path)
        if local.rootIsNotADirectory { throw RepositoryError.notEmpty(path: local.location, entries: []) }
        return try create(storage: local, compressionLevel: compressionLevel, force: force, encryptTo: recipients, writerKeyPath: writerKeyPath)
    }

    /// Creates a repository on `storage`, which must be empty (or, with `force`, hold no
    /// repository yet). The catalog goes to `catalogPath`, by default the backend's.
    ///
    /// Crash behaviour: `backstop.json` is written last and atomically; a crash before it leaves
    /// storage that is not yet a repository, and `init` can be run again.
    ///
    /// With `encryptTo` recipients (X25519 keys, or one passphrase), the repository is encrypted
    /// (see `EncryptedBackend`): a keyed-hash key is made, wrapped for the recipients into
    /// `backstop.json`, and written in the clear to the writer key file at `writerKeyPath`
    /// (default `WriterKey.defaultPath`, mode 0600) before `backstop.json`; an existing file
    /// there is refused, never replaced.
    @discardableResult
    public static func create(storage: StorageBackend, catalogPath: String? = nil, compressionLevel: Int32 = 3,
                              force: Bool = false, encryptTo recipients: [AgeRecipient] = [],
                              writerKeyPath: String? = nil) throws -> Repository {
        if try storage.exists(RepositoryLayout.config) { throw RepositoryError.alreadyExists(path: storage.location) }
        let entries = try storage.children(of: nil)
        if !entries.isEmpty && !force { throw RepositoryError.notEmpty(path: storage.location, entries: entries) }
        try storage.prepare()
        var config = RepositoryConfig(
            format: Manifest.currentFormat, id: UUID().uuidString.lowercased(), createdAt: truncatedToMillis(Date()),
            compression: .init(algorithm: "zstd", level: compressionLevel))
        var keys = RepositoryKeys()
        if !recipients.isEmpty {
            let setup = try RepositoryEncryption.create(recipients: recipients, repositoryID: config.id)
            let path = writerKeyPath ?? WriterKey.defaultPath(repositoryID: config.id)
            try setup.writerKey.write(to: path)
            config.encryption = setup.encryption
            keys.writerKeyPath = path
        }
        _ = try Catalog(path: try resolveCatalogPath(catalogPath, storage: storage, repositoryID: config.id))
        let bytes = Array(try Timestamp.jsonEncoder().encode(config)) + [0x0A]
        if try storage.put(RepositoryLayout.config, bytes, mode: .createOnly) == .alreadyPresent {
            throw RepositoryError.alreadyExists(path: storage.location)
        }
        return try open(storage: storage, catalogPath: catalogPath, keys: keys)
    }

    /// Opens the repository in the local directory `path` and reconciles its catalog.
    public static func open(at path: String, keys: RepositoryKeys = RepositoryKeys()) throws -> Repository {
        try open(storage: LocalBackend(root: path), keys: keys)
    }

    /// Opens the repository on `storage` and reconciles its catalog (at `catalogPath`, by
    /// default the backend's).
    ///
    /// An encrypted repository is opened through an `EncryptedBackend` over `storage` with
    /// `keys` (`Repository.storage` is then that decorator).
    public static func open(storage given: StorageBackend, catalogPath: String? = nil, keys: RepositoryKeys = RepositoryKeys()) throws -> Repository {
        let config = try readConfig(given)
        var storage = given
        if let encryption = config.encryption, !(given is EncryptedBackend) {
            storage = try EncryptedBackend(base: given, encryption: encryption, repositoryID: config.id, keys: keys)
        }
        let catalogFile = try resolveCatalogPath(catalogPath, storage: storage, repositoryID: config.id)
        do {
            do {
                return try openCatalog(storage: storage, config: config, catalogPath: catalogFile)
            } catch where catalogPath == nil && storage.defaultCatalogPath == nil && !(error is StorageError) && !(error is S3Error)
                        && !(error is Interrupted) && !(error is RepositoryError) {
                // A cache of a remote repository that does not open: it holds nothing the
                // repository does not, so it is rebuilt from the repository.
                for suffix in ["", "-wal", "-shm", "-journal"] { unlink(catalogFile + suffix) }
                return try openCatalog(storage: storage, config: config, catalogPath: catalogFile)
            }
        } catch let error as RepositoryError {
            throw error
        } catch let error as Interrupted {
            throw error
        } catch let error as FileError {
            // Not the catalog's fault (permissions of snapshots/ or events/, a failing disk).
            throw RepositoryError.io(path: error.path, operation: "read", errno: error.errnoValue ?? EIO)
        } catch let error as StorageError {
            throw error
        } catch let error as S3Error {
            throw error
        } catch {
            // SQLite's errors, and GRDB's when a row cannot be decoded: the catalog's.
            throw RepositoryError.unreadableCatalog(path: storage.location, catalog: catalogFile, reason: Catalog.explain(error))
        }
    }

    /// The catalog's path: `given`, else the backend's own, else the host's cache for a remote
    /// repository (`<cache>/<repository id>/catalog.sqlite`, its folder made here).
    static func resolveCatalogPath(_ given: String?, storage: StorageBackend, repositoryID: String) throws -> String {
        if given == nil, storage.defaultCatalogPath == nil, let cache = storage.catalogCacheDirectory {
            let dir = cache + "/" + repositoryID
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw RepositoryError.unreadableCatalog(path: storage.location, catalog: dir + "/catalog.sqlite",
                                                        reason: "cannot create the cache folder \(dir) (\(error.localizedDescription)); give another with --cache-dir")
            }
            return dir + "/catalog.sqlite"
        }
        guard let path = given ?? storage.defaultCatalogPath else {
            throw RepositoryError.unreadableCatalog(path: storage.location, catalog: "(none)", reason: "this repository keeps no catalog of its own; give a catalog path")
        }
        return path
    }

    /// `backstop.json`, checked for a format this version reads (format 1 too with
    /// `acceptingFormat1`: for `migrate`, which converts it).
    static func readConfig(_ storage: StorageBackend, acceptingFormat1: Bool = false) throws -> RepositoryConfig {
        let bytes: [UInt8]
        do {
            guard try storage.exists(RepositoryLayout.config) else { throw RepositoryError.notARepository(path: storage.location) }
            bytes = try storage.read(RepositoryLayout.config)
        } catch let error as FileError {
            throw RepositoryError.io(path: error.path, operation: "read", errno: error.errnoValue ?? EIO)
        }
        let config: RepositoryConfig
        do {
            config = try Timestamp.jsonDecoder().decode(RepositoryConfig.self, from: Data(bytes))
        } catch {
            throw RepositoryError.unreadableConfig(path: storage.location, reason: RepositoryError.describe(decoding: error))
        }
        if config.format == 1 {
            if acceptingFormat1 { return config }
            throw RepositoryError.needsMigration(path: storage.location)
        }
        guard config.format == Manifest.currentFormat else {
            throw RepositoryError.unsupportedFormat(path: storage.location, format: config.format)
        }
        return config
    }

    private static func openCatalog(storage: StorageBackend, config: RepositoryConfig, catalogPath: String) throws -> Repository {
        let catalog = try Catalog(path: catalogPath)
        var report = ReconcileReport()
        do {
            report = try reconcile(catalog, storage: storage)
        } catch where Catalog.isUnwritable(error) {
            // A read-only or full repository can still be read: the catalog may lag behind
            // `snapshots/` until the next open that can write.
            report = ReconcileReport()
            report.notSaved = Catalog.explain(error)
        }
        return Repository(storage: storage, config: config, catalog: catalog, reconciled: report)
    }

    /// Brings `catalog` up to date with `snapshots/`, `events/` and `verifications/`.
    ///
    /// The listing of a prefix is skipped while the backend's change token for it is the one
    /// saved after the last complete reconcile. The token is read before listing, and saved only
    /// when the listing saw no incomplete snapshot and no writer held the lease once it was done:
    /// a writer's commit or prune that the listing may have missed leaves the token unsaved (or
    /// cleared: writers clear it before they commit or remove a manifest), so the next open lists
    /// again.
    static func reconcile(_ catalog: Catalog, storage: StorageBackend, force: Bool = false) throws -> ReconcileReport {
        var report = ReconcileReport()
        let snapshotsToken = storage.changeToken(under: RepositoryLayout.snapshots)
        if try force || snapshotsToken == nil || catalog.meta("snapshots.fingerprint") != snapshotsToken {
            let states = RepositoryLayout.snapshotStates(try storage.list(under: RepositoryLayout.snapshots))
            // Rows of snapshots that are gone: their frames counted out while the list is there.
            for id in try catalog.snapshotIDs().subtracting(states.committed) {
                let frames = try? FrameList.decode(storage.read(RepositoryLayout.snapshotFile(id, "frames.tsv")), snapshot: id)
                try catalog.removeIndexed(id, frames)
                report.removed.append(id)
            }
            let removed = report.removed
            report = try catalog.reconcile(folders: states.committed) { id in try loadManifest(storage, id) }
            report.removed = removed.sorted()
            report.incomplete = states.incomplete
            let quiet = states.incomplete.isEmpty && storage.leaseHolder("writer") == nil
            if let snapshotsToken, report.unreadable.isEmpty && quiet {
                try catalog.setMeta("snapshots.fingerprint", snapshotsToken)
            }
        }
        // Format 2: every cataloged snapshot's frames counted in (a snapshot whose frame list
        // cannot be read stays out, and keeps prune from sweeping frames).
        for id in try catalog.unindexedSnapshots() {
            guard let frames = try? FrameList.decode(storage.read(RepositoryLayout.snapshotFile(id, "frames.tsv")), snapshot: id) else { continue }
            try catalog.indexFrames(id, frames)
        }
        let eventsToken = storage.changeToken(under: RepositoryLayout.events)
        if try force || eventsToken == nil || catalog.meta("events.fingerprint") != eventsToken {
            try catalog.reconcileEvents(loadEvents(storage))
            if let eventsToken { try catalog.setMeta("events.fingerprint", eventsToken) }
        }
        let verificationsToken = storage.changeToken(under: RepositoryLayout.verifications)
        if try force || verificationsToken == nil || catalog.meta("verifications.fingerprint") != verificationsToken {
            try reconcileVerifications(catalog, storage: storage)
            if let verificationsToken { try catalog.setMeta("verifications.fingerprint", verificationsToken) }
        }
        return report
    }

    // MARK: - The writer lease

    /// Takes the writer lease for `body`, removing what interrupted writers left first.
    ///
    /// `shared`: for a backup, whose keys never collide with another backup's. Where the backend
    /// has shared leases (S3), backups from several hosts run at once and only exclusive
    /// writers (prune, a policy run, catalog rebuild, migrate) wait for them; incomplete
    /// snapshots are then left alone (they may be another backup's at work) for the next
    /// exclusive writer to remove. Elsewhere the lease is the exclusive one, as before.
    public func withWriterLock<T>(
        command: String, timeout: TimeInterval, shared: Bool = false, warn: (String) -> Void, _ body: () throws -> T
    ) throws -> T {
        try Self.withWriterLock(storage: storage, command: command, timeout: timeout, shared: shared, warn: warn, body)
    }

    /// Takes the writer lease of `storage` without opening a catalog (for `catalog rebuild`,
    /// when the catalog itself may be damaged). The lease is renewed while `body` runs.
    public static func withWriterLock<T>(
        storage: StorageBackend, command: String, timeout: TimeInterval, shared: Bool = false, warn: (String) -> Void,
        _ body: () throws -> T
    ) throws -> T {
        guard try storage.exists(RepositoryLayout.config) else { throw RepositoryError.notARepository(path: storage.location) }
        let lease = shared
            ? try storage.acquireSharedLease("writer", command: command, duration: leaseDuration, timeout: timeout, warn: warn)
            : try storage.acquireLease("writer", command: command, duration: leaseDuration, timeout: timeout, warn: warn)
        defer { lease.release() }
        let releaseOnSignal = Interruption.register { lease.release() }
        defer { Interruption.unregister(releaseOnSignal) }
        // Before anything else: on a full disk, what an interrupted writer left may be all the
        // room there is (the lease was then taken without its holder record).
        if !lease.isShared {
            try storage.removeLeftovers(warn: warn)
            try removeIncompleteSnapshots(storage: storage, warn: warn)
        }
        try lease.recordHolder()
        let renewer = LeaseRenewer(lease: lease, every: leaseDuration / 5)
        defer { renewer.stop() }
        return try body()
    }

    /// Local convenience for `withWriterLock(storage:…)`.
    public static func withWriterLock<T>(
        at path: String, command: String, timeout: TimeInterval, warn: (String) -> Void, _ body: () throws -> T
    ) throws -> T {
        try withWriterLock(storage: LocalBackend(root: path), command: command, timeout: timeout, warn: warn, body)
    }

    /// Removes incomplete snapshots (objects under `snapshots/<id>/` without a manifest): what a
    /// backup that died before its commit, or a prune that died after removing a manifest,
    /// left; then the verification history of snapshots that are not committed (a prune that
    /// died before removing it). Call only while holding the writer lease.
    static func removeIncompleteSnapshots(storage: StorageBackend, warn: (String) -> Void) throws {
        let keys = try storage.list(under: RepositoryLayout.snapshots)
        let states = RepositoryLayout.snapshotStates(keys)
        let incomplete = Set(states.incomplete)
        for id in incomplete.sorted() {
            warn("removing snapshots/\(id), an incomplete snapshot (no manifest) left by an interrupted backup or prune")
        }
        for key in keys {
            let c = key.components
            if let id = SnapshotID(c[1]), incomplete.contains(id) { try storage.delete(key) }
        }
        // History is only ever written for committed snapshots, so history of any other is a
        // pruned snapshot's.
        let committed = Set(states.committed)
        for name in try storage.children(of: RepositoryLayout.verifications) {
            guard let id = SnapshotID(name), !committed.contains(id) else { continue }
            warn("removing verifications/\(id), the verification history of a snapshot that no longer exists (left by an interrupted prune)")
            for key in try storage.list(under: RepositoryLayout.verifications(of: id)) { try storage.delete(key) }
        }
    }

    // MARK: - Snapshots

    /// The committed snapshots (those with a manifest), oldest first.
    public func snapshotIDs() throws -> [SnapshotID] {
        RepositoryLayout.snapshotStates(try storage.list(under: RepositoryLayout.snapshots)).committed
    }

    public func manifest(_ id: SnapshotID) throws -> Manifest {
        guard try storage.exists(RepositoryLayout.manifest(id)) else { throw RepositoryError.snapshotNotFound(id.rawValue) }
        return try Self.loadManifest(storage, id)
    }

    /// A storage failure (EIO) stays what it is (74): it says nothing about the manifest.
    static func loadManifest(_ storage: StorageBackend, _ id: SnapshotID) throws -> Manifest {
        do {
            let m = try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(storage.read(RepositoryLayout.manifest(id))))
            guard let encrypted = storage as? EncryptedBackend else { return m }
            return try encrypted.unseal(m)
        } catch let error as AgeError {
            throw error
        } catch where ExitStatus.isReadFailure(error) {
            throw error
        } catch {
            throw RepositoryError.unreadableManifest(id: id.rawValue, reason: RepositoryError.describe(decoding: error))
        }
    }

    /// Resolves a whole ID, or a unique prefix of the ID or of its 8 hex characters, among the
    /// committed snapshots.
    public func resolve(_ text: String) throws -> SnapshotID {
        // One level of listing, then a manifest check of the matches only.
        let folders = try storage.children(of: RepositoryLayout.snapshots).compactMap(SnapshotID.init)
        if let exact = SnapshotID(text), folders.contains(exact), try storage.exists(RepositoryLayout.manifest(exact)) { return exact }
        guard !text.isEmpty else { throw RepositoryError.snapshotNotFound(text) }
        let matches = try folders.filter { $0.rawValue.hasPrefix(text) || $0.suffix.hasPrefix(text.lowercased()) }
            .filter { try storage.exists(RepositoryLayout.manifest($0)) }
        guard !matches.isEmpty else { throw RepositoryError.snapshotNotFound(text) }
        guard matches.count == 1 else { throw RepositoryError.ambiguousSnapshot(prefix: text, matches: matches) }
        return matches[0]
    }

    /// The whole selection for `criteria`, also when nothing matched (`select` throws then): the
    /// chosen snapshot if any, its fallbacks of the same source and kind, and every candidate's
    /// explanation. Answered by the catalog.
    public func selection(_ criteria: SelectionCriteria) throws -> SelectionResult {
        try catalog.select(criteria)
    }

    /// Every cataloged snapshot, oldest completed first.
    public func snapshots() throws -> [CatalogSnapshot] {
        try catalog.snapshots()
    }

    /// Each cataloged snapshot's last verification.
    public func lastVerifications() throws -> [SnapshotID: VerificationRecord] {
        try catalog.lastVerifications()
    }

    /// Commits a written snapshot: puts `SHA256SUMS` and then the manifest (the commit), then
    /// catalogs it. The payload objects must already be committed.
    ///
    /// `cleanup` is the interruption cleanup that removes the snapshot's objects: the manifest's
    /// put and its unregistering are one critical step, so an interruption's cleanup never
    /// removes objects of a snapshot being committed; after a signal, nothing is committed.
    ///
    /// Crash behaviour: before the manifest, an incomplete snapshot (removed by the next
    /// writer); after it, a whole snapshot that the next open's reconcile catalogs.
    func commit(manifest: Manifest, frames: [FrameRef], cleanup: Int? = nil) throws {
        // An encrypted repository stores the private fields sealed (README "Encryption at rest").
        let stored = try (storage as? EncryptedBackend)?.seal(manifest) ?? manifest
        let manifestBytes = Array(try Timestamp.jsonEncoder().encode(stored)) + [0x0A]
        var sums: [(String, SHA256Digest)] = manifest.files.map { ($0.name, $0.sha256) }
        sums.append(("manifest.json", SHA256Hasher.digest(manifestBytes)))
        let text = sums.sorted { $0.0 < $1.0 }.map { "\($0.1.hex)  \($0.0)\n" }.joined()
        try putNew(RepositoryLayout.snapshotFile(manifest.id, "SHA256SUMS"), Array(text.utf8))
        try catalog.setMeta("snapshots.fingerprint", "")   // the next open reconciles, whatever the backend's token
        try Interruption.critical(unregistering: cleanup) {
            try putNew(RepositoryLayout.manifest(manifest.id), manifestBytes)
        }
        try catalog.insert(manifest)
        try catalog.indexFrames(manifest.id, frames)
    }

    /// A create-only put of a snapshot's own object: one already there was not written by us.
    func putNew(_ key: StorageKey, _ bytes: [UInt8]) throws {
        if try storage.put(key, bytes, mode: .createOnly) == .alreadyPresent {
            throw RepositoryError.io(path: "\(storage.location): \(key)", operation: "create", errno: EEXIST)
        }
    }

    /// Rebuilds the catalog from the repository alone (manifests, events, verification
    /// history), into a new file that replaces the old one. The caller holds the writer lease.
    @discardableResult
    public static func rebuildCatalog(storage: StorageBackend, catalogPath: String? = nil) throws -> ReconcileReport {
        let config = try readConfig(storage)
        return try rebuildCatalogFile(storage: storage, catalogFile: try resolveCatalogPath(catalogPath, storage: storage, repositoryID: config.id))
    }

    /// `rebuildCatalog`'s work, whatever `backstop.json` says (`migrate` rebuilds the catalog
    /// before it writes format 2 there).
    @discardableResult
    static func rebuildCatalogFile(storage: StorageBackend, catalogFile: String) throws -> ReconcileReport {
        let temp = catalogFile + ".rebuild-\(getpid())"
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temp + suffix) }
        let fresh = try Catalog(path: temp)
        let report: ReconcileReport
        do {
            report = try reconcile(fresh, storage: storage, force: true)
            try fresh.close()
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temp + suffix) }
            throw error
        }
        for suffix in ["-wal", "-shm", "-journal"] { unlink(catalogFile + suffix) }
        try FileSystem.rename(temp, catalogFile)
        try FileSystem.sync((catalogFile as NSString).deletingLastPathComponent)
        return report
    }

    /// Local convenience for `rebuildCatalog(storage:)`.
    @discardableResult
    public static func rebuildCatalog(at path: String) throws -> ReconcileReport {
        try rebuildCatalog(storage: LocalBackend(root: path))
    }

    static func truncatedToMillis(_ d: Date) -> Date {
        Timestamp.truncatedToMillis(d)
    }
}

/// Renews a lease every `interval` seconds on a thread of its own, until stopped. A renewal
/// that fails is tried again at the next interval (the lease only matters to other hosts, which
/// wait for it to expire).
final class LeaseRenewer: @unchecked Sendable {
    private let condition = NSCondition()
    private var stopped = false

    init(lease: StorageLease, every interval: TimeInterval) {
        let thread = Thread { [self] in
            condition.lock()
            defer { condition.unlock() }
            while !stopped {
                if !condition.wait(until: Date().addingTimeInterval(interval)) && !stopped {
                    condition.unlock()
                    try? lease.renew()
                    condition.lock()
                }
            }
        }
        thread.start()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }
}
