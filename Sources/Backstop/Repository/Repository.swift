import Foundation

/// A Backstop repository on the local filesystem, laid out as DESIGN.md describes:
///
/// ```
/// backstop.json  snapshots/<id>/  events/  catalog.sqlite  tmp/  locks/
/// ```
///
/// Only `Repository` and `Catalog` change what is stored. Opening a repository reconciles the
/// catalog with `snapshots/` (a directory listing), so a crash between a snapshot's rename and its
/// catalog insert loses nothing.
public final class Repository {
    public let path: String
    public let config: RepositoryConfig
    public let catalog: Catalog
    /// What the reconcile on open changed.
    public let reconciled: ReconcileReport

    public var snapshotsDirectory: String { path + "/snapshots" }
    public var tmpDirectory: String { path + "/tmp" }
    public var locksDirectory: String { path + "/locks" }
    public var eventsDirectory: String { path + "/events" }
    public var catalogPath: String { path + "/catalog.sqlite" }

    private init(path: String, config: RepositoryConfig, catalog: Catalog, reconciled: ReconcileReport) {
        self.path = path
        self.config = config
        self.catalog = catalog
        self.reconciled = reconciled
    }

    /// Creates a repository at `path` (an empty or missing directory). A directory that holds
    /// anything else is refused unless `force` (its files are then left as they are, beside the
    /// repository's).
    ///
    /// Crash behaviour: `backstop.json` is written last and atomically; a crash before it leaves a
    /// directory that is not yet a repository, and `init` can be run again.
    @discardableResult
    public static func create(at path: String, compressionLevel: Int32 = 3, force: Bool = false) throws -> Repository {
        let path = normalize(path)
        if FileSystem.exists(path + "/backstop.json") { throw RepositoryError.alreadyExists(path: path) }
        if FileSystem.exists(path) {
            guard FileSystem.isDirectory(path) else { throw RepositoryError.notEmpty(path: path, entries: []) }
            let entries = try FileSystem.list(path)
            if !entries.isEmpty && !force { throw RepositoryError.notEmpty(path: path, entries: entries) }
        }
        try FileSystem.makeDirectory(path)
        for sub in ["snapshots", "events", "tmp", "locks"] {
            try FileSystem.makeDirectory(path + "/" + sub)
        }
        let config = RepositoryConfig(
            format: Manifest.currentFormat, id: UUID().uuidString.lowercased(), createdAt: truncatedToMillis(Date()),
            compression: .init(algorithm: "zstd", level: compressionLevel))
        let bytes = Array(try Timestamp.jsonEncoder().encode(config)) + [0x0A]
        _ = try Catalog(path: path + "/catalog.sqlite")
        try FileSystem.writeAtomically(bytes, to: path + "/backstop.json")
        return try open(at: path)
    }

    /// Opens the repository at `path` and reconciles its catalog.
    public static func open(at path: String) throws -> Repository {
        let path = normalize(path)
        let configPath = path + "/backstop.json"
        guard FileSystem.exists(configPath) else { throw RepositoryError.notARepository(path: path) }
        let config: RepositoryConfig
        do {
            config = try Timestamp.jsonDecoder().decode(RepositoryConfig.self, from: Data(FileSystem.readFile(configPath)))
        } catch let error as FileError {
            throw RepositoryError.io(path: configPath, operation: "read", errno: error.errnoValue ?? EIO)
        } catch {
            throw RepositoryError.unreadableConfig(path: path, reason: RepositoryError.describe(decoding: error))
        }
        guard config.format == Manifest.currentFormat else {
            throw RepositoryError.unsupportedFormat(path: path, format: config.format)
        }
        do {
            return try openCatalog(path: path, config: config)
        } catch let error as RepositoryError {
            throw error
        } catch let error as Interrupted {
            throw error
        } catch let error as FileError {
            // Not the catalog's fault (permissions of snapshots/ or events/, a failing disk).
            let file: String
            switch error {
            case let .open(p, _), let .read(p, _), let .write(p, _), let .sync(p, _), let .truncated(p, _, _): file = p
            }
            throw RepositoryError.io(path: file, operation: "read", errno: error.errnoValue ?? EIO)
        } catch {
            // SQLite's errors, and GRDB's when a row cannot be decoded: the catalog's.
            throw RepositoryError.unreadableCatalog(path: path, reason: Catalog.explain(error))
        }
    }

    private static func openCatalog(path: String, config: RepositoryConfig) throws -> Repository {
        let catalog = try Catalog(path: path + "/catalog.sqlite")
        // The listing is skipped while the folder is unchanged since the last reconcile: its
        // mtime, link count and inode change whenever a snapshot is renamed in or out.
        var report = ReconcileReport()
        do {
            let snapshotsPrint = FileSystem.fingerprint(path + "/snapshots")
            if try catalog.meta("snapshots.fingerprint") != snapshotsPrint {
                report = try reconcileSnapshots(catalog, repositoryPath: path)
                if report.unreadable.isEmpty { try catalog.setMeta("snapshots.fingerprint", snapshotsPrint) }
            }
            let eventsPrint = FileSystem.fingerprint(path + "/events")
            if try catalog.meta("events.fingerprint") != eventsPrint {
                try catalog.reconcileEvents(loadEvents(path + "/events"))
                try catalog.setMeta("events.fingerprint", eventsPrint)
            }
        } catch where Catalog.isUnwritable(error) {
            // A read-only or full repository can still be read: the catalog may lag behind
            // `snapshots/` until the next open that can write.
            report = ReconcileReport()
            report.notSaved = Catalog.explain(error)
        }
        return Repository(path: path, config: config, catalog: catalog, reconciled: report)
    }

    /// Takes the writer lock for `body`, cleaning leftovers in `tmp/` first.
    public func withWriterLock<T>(
        command: String, timeout: TimeInterval, warn: (String) -> Void, _ body: () throws -> T
    ) throws -> T {
        try Self.withWriterLock(at: path, command: command, timeout: timeout, warn: warn, body)
    }

    /// Removes what crashed writers left in `tmp/`. Call only while holding the writer lock.
    static func cleanTemporaryFiles(repositoryPath path: String, warn: (String) -> Void) throws {
        let tmp = path + "/tmp"
        for name in try FileSystem.list(tmp) {
            warn("removing tmp/\(name), left behind by an interrupted writer")
            try FileSystem.removeTree(tmp + "/" + name)
        }
    }

    public func snapshotDirectory(_ id: SnapshotID) -> String { snapshotsDirectory + "/" + id.rawValue }

    /// Snapshot IDs present in `snapshots/`, oldest first.
    public func snapshotFolders() throws -> [SnapshotID] {
        try FileSystem.list(snapshotsDirectory).compactMap(SnapshotID.init)
    }

    public func manifest(_ id: SnapshotID) throws -> Manifest {
        let file = snapshotDirectory(id) + "/manifest.json"
        guard FileSystem.exists(snapshotDirectory(id)) else { throw RepositoryError.snapshotNotFound(id.rawValue) }
        return try Self.loadManifest(path: file, id: id.rawValue)
    }

    /// Makes `catalog` agree with the folders in `snapshots/`, reading the manifests it lacks.
    static func reconcileSnapshots(_ catalog: Catalog, repositoryPath path: String) throws -> ReconcileReport {
        let folders = try FileSystem.list(path + "/snapshots").compactMap(SnapshotID.init)
        return try catalog.reconcile(folders: folders) { id in
            try loadManifest(path: path + "/snapshots/" + id.rawValue + "/manifest.json", id: id.rawValue)
        }
    }

    static func loadManifest(path: String, id: String) throws -> Manifest {
        do {
            return try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(FileSystem.readFile(path)))
        } catch {
            throw RepositoryError.unreadableManifest(id: id, reason: RepositoryError.describe(decoding: error))
        }
    }

    /// Resolves a whole ID, or a unique prefix of the ID or of its 8 hex characters.
    public func resolve(_ text: String) throws -> SnapshotID {
        let all = try snapshotFolders()
        if let exact = SnapshotID(text), all.contains(exact) { return exact }
        let matches = all.filter { $0.rawValue.hasPrefix(text) || $0.suffix.hasPrefix(text.lowercased()) }
        guard !text.isEmpty, !matches.isEmpty else { throw RepositoryError.snapshotNotFound(text) }
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

    /// Creates `tmp/<id>/` for a snapshot being written.
    func makeStagingDirectory(_ id: SnapshotID) throws -> String {
        let dir = tmpDirectory + "/" + id.rawValue
        try FileSystem.makeDirectory(dir)
        return dir
    }

    /// Commits a staged snapshot: writes its manifest and `SHA256SUMS` into the staging folder,
    /// fsyncs them and the folder, renames it into `snapshots/`, fsyncs `snapshots/`, then
    /// catalogs it. The payload files must already be durable (`FileSink.finish()`).
    ///
    /// `cleanup` is the interruption cleanup that removes `staging`: the rename and its
    /// unregistering are one critical step, so an interruption's cleanup never removes files from
    /// a folder being renamed into `snapshots/`; after a signal, nothing is committed.
    ///
    /// Crash behaviour: before the rename, a leftover in `tmp/` (removed by the next writer);
    /// after it, a whole snapshot that the next open's reconcile catalogs.
    func commit(staging: String, manifest: Manifest, cleanup: Int? = nil) throws {
        let manifestBytes = Array(try Timestamp.jsonEncoder().encode(manifest)) + [0x0A]
        let manifestSink = try FileSink(path: staging + "/manifest.json")
        try manifestSink.write(manifestBytes)
        try manifestSink.finish()

        var sums: [(String, SHA256Digest)] = manifest.files.map { ($0.name, $0.sha256) }
        sums.append(("manifest.json", SHA256Hasher.digest(manifestBytes)))
        let text = sums.sorted { $0.0 < $1.0 }.map { "\($0.1.hex)  \($0.0)\n" }.joined()
        let sumsSink = try FileSink(path: staging + "/SHA256SUMS")
        try sumsSink.write(text)
        try sumsSink.finish()

        try FileSystem.sync(staging)
        try catalog.setMeta("snapshots.fingerprint", "")   // the next open reconciles, whatever the clock's granularity
        let final = snapshotDirectory(manifest.id)
        try Interruption.critical(unregistering: cleanup) { try FileSystem.rename(staging, final) }
        try FileSystem.sync(snapshotsDirectory)
        try catalog.insert(manifest)
    }

    /// Rebuilds `catalog.sqlite` from the manifests alone.
    @discardableResult
    public static func rebuildCatalog(at path: String) throws -> ReconcileReport {
        let path = normalize(path)
        guard FileSystem.exists(path + "/backstop.json") else { throw RepositoryError.notARepository(path: path) }
        let catalogPath = path + "/catalog.sqlite"
        let temp = path + "/tmp/catalog-rebuild-\(getpid()).sqlite"
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temp + suffix) }
        let fresh = try Catalog(path: temp)
        let report = try reconcileSnapshots(fresh, repositoryPath: path)
        try fresh.reconcileEvents(loadEvents(path + "/events"))
        try fresh.close()
        for suffix in ["-wal", "-shm", "-journal"] { unlink(catalogPath + suffix) }
        try FileSystem.rename(temp, catalogPath)
        try FileSystem.sync(path)
        return report
    }

    static func normalize(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    static func truncatedToMillis(_ d: Date) -> Date {
        Timestamp.truncatedToMillis(d)
    }
}

extension Repository {
    /// Takes the writer lock of the repository at `path` without opening its catalog (for
    /// `catalog rebuild`, when the catalog itself may be damaged).
    public static func withWriterLock<T>(
        at path: String, command: String, timeout: TimeInterval, warn: (String) -> Void, _ body: () throws -> T
    ) throws -> T {
        let path = normalize(path)
        guard FileSystem.exists(path + "/backstop.json") else { throw RepositoryError.notARepository(path: path) }
        let lock = try RepositoryLock.acquire(
            locksDirectory: path + "/locks", repositoryPath: path, command: command, timeout: timeout, warn: warn)
        defer { lock.release() }
        let releaseOnSignal = Interruption.register { lock.release() }
        defer { Interruption.unregister(releaseOnSignal) }
        // Before anything else: on a full disk, what an interrupted writer left in tmp/ may be
        // all the room there is (the lock was then taken without its holder record).
        try cleanTemporaryFiles(repositoryPath: path, warn: warn)
        try lock.recordHolder()
        return try body()
    }
}
