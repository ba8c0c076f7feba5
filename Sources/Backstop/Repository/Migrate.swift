import Foundation

/// What `backstop migrate` did to one snapshot.
public struct MigratedSnapshot: Sendable, Encodable {
    public var id: SnapshotID
    public var kind: SnapshotKind
    public var source: String
    /// Frames in the snapshot's `frames.tsv`.
    public var frames: Int
    /// Frames that no snapshot migrated before it holds (its manifest's `framesNew`).
    public var framesNew: Int
    /// Their stored (compressed) bytes (its manifest's `bytesNew`).
    public var bytesNew: Int64
    /// The size of the format-1 payload file this run removed (0 when `alreadyConverted`).
    public var payloadBytes: Int64
    /// Converted by an earlier, interrupted run: only what it left (the old payload) was removed.
    public var alreadyConverted: Bool
}

/// What `backstop migrate` did.
public struct MigrationReport: Sendable, Encodable {
    /// The repository was format 2 already: nothing was changed.
    public var alreadyCurrent: Bool
    public var snapshots: [MigratedSnapshot] = []
    /// Seconds the run took.
    public var duration: Double = 0

    public var frames: Int { snapshots.reduce(0) { $0 + $1.frames } }
    public var framesNew: Int { snapshots.reduce(0) { $0 + $1.framesNew } }
    public var bytesNew: Int64 { snapshots.reduce(0) { $0 + $1.bytesNew } }

    enum CodingKeys: String, CodingKey { case alreadyCurrent, snapshots, duration, frames, framesNew, bytesNew }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(alreadyCurrent, forKey: .alreadyCurrent)
        try c.encode(snapshots, forKey: .snapshots)
        try c.encode(duration, forKey: .duration)
        try c.encode(frames, forKey: .frames)
        try c.encode(framesNew, forKey: .framesNew)
        try c.encode(bytesNew, forKey: .bytesNew)
    }
}

/// A format-1 snapshot that cannot be converted: its payload is missing or does not match its
/// manifest. Nothing of it was changed; frames already stored for it are unreferenced.
public enum MigrationError: Error, CustomStringConvertible, ExitStatusProviding {
    case damagedSnapshot(id: SnapshotID, file: String, reason: String)

    public var description: String {
        switch self {
        case let .damagedSnapshot(id, file, reason):
            return """
                cannot migrate snapshot \(id): snapshots/\(id)/\(file) \(reason). It was left as it is (format 1), and the \
                repository is still format 1 (snapshots converted so far stay converted). Check it with the previous \
                release (`backstop verify \(id)`); if it is corrupt, remove the folder snapshots/\(id) (or restore it from \
                a copy of the repository), then run `backstop migrate` again
                """
        }
    }

    public var exitStatus: ExitStatus { .integrity }
}

extension Repository {
    /// Converts a format-1 repository in place to format 2 (`backstop migrate`), without
    /// recompressing: each frame of a snapshot's `data.tar.zst` / `data.zst` becomes the frame
    /// object `frames/<ab>/<ID>` (its compressed bytes as they are; the ID is the SHA-256 of its
    /// decoded bytes, so every frame is decoded and checked), then the snapshot gets its
    /// `frames.tsv`, a new `SHA256SUMS` and a format-2 manifest (same ID, times, source,
    /// sections, entry list and stream digest), and its payload file is removed. The catalog is
    /// rebuilt, and `backstop.json` says format 2 last. Runs under the writer lease.
    ///
    /// `progress` hears of each snapshot as it is done. A repository already at format 2 is
    /// left untouched (`alreadyCurrent`), without taking the lease.
    ///
    /// Crash behaviour: every step can be interrupted and the next run finishes the job. Until
    /// `backstop.json` changes, the repository is format 1 and only `migrate` opens it. Per
    /// snapshot, in order: frame objects (create-only; identical content is stored once),
    /// `frames.tsv`, `SHA256SUMS`, the manifest (an atomic replace: the snapshot is format 1 with
    /// its payload before it, format 2 with its frames after it; a crash between the last two
    /// leaves a format-1 manifest beside format-2 sums, which the next run rewrites), then the
    /// old payload is deleted. A snapshot whose payload does not match its manifest stops the
    /// run (`MigrationError`, 65) before its manifest is touched.
    public static func migrate(storage: StorageBackend, catalogPath: String? = nil, lockTimeout: TimeInterval = 0,
                               warn: (String) -> Void, progress: (MigratedSnapshot) -> Void = { _ in }) throws -> MigrationReport {
        let clock = Date()
        let current = try readConfig(storage, acceptingFormat1: true)
        if current.format == Manifest.currentFormat {
            return MigrationReport(alreadyCurrent: true)
        }
        let catalogFile = try resolveCatalogPath(catalogPath, storage: storage, repositoryID: current.id)
        try storage.prepare()   // a copied repository may lack its empty folders (locks/, tmp/)
        var report = try withWriterLock(storage: storage, command: "backstop migrate", timeout: lockTimeout, warn: warn) { () -> MigrationReport in
            // Another migrate may have finished while this one waited for the lease.
            var config = try readConfig(storage, acceptingFormat1: true)
            if config.format == Manifest.currentFormat { return MigrationReport(alreadyCurrent: true) }
            keepCatalogOnlyVerifications(storage: storage, catalogFile: catalogFile, warn: warn)
            var report = MigrationReport(alreadyCurrent: false)
            var seen = Set<SHA256Digest>()
            for id in RepositoryLayout.snapshotStates(try storage.list(under: RepositoryLayout.snapshots)).committed {
                try Interruption.check()
                let done = try migrateSnapshot(id, storage: storage, seen: &seen)
                report.snapshots.append(done)
                progress(done)
                FaultInjection.point("migrate-after-snapshot")
            }
            FaultInjection.point("migrate-before-catalog")
            try rebuildCatalogFile(storage: storage, catalogFile: catalogFile)
            FaultInjection.point("migrate-before-config")
            config.format = Manifest.currentFormat
            let bytes = Array(try Timestamp.jsonEncoder().encode(config)) + [0x0A]
            try storage.put(RepositoryLayout.config, bytes, mode: .replace)
            return report
        }
        report.duration = Date().timeIntervalSince(clock)
        return report
    }

    /// Local convenience for `migrate(storage:…)`.
    public static func migrate(at path: String, lockTimeout: TimeInterval = 0, warn: (String) -> Void,
                               progress: (MigratedSnapshot) -> Void = { _ in }) throws -> MigrationReport {
        try migrate(storage: LocalBackend(root: path), lockTimeout: lockTimeout, warn: warn, progress: progress)
    }

    /// Converts one snapshot (see `migrate`). `seen` holds the frame IDs of the snapshots
    /// converted before it, so that `framesNew`/`bytesNew` are the same whether or not a run was
    /// interrupted.
    static func migrateSnapshot(_ id: SnapshotID, storage: StorageBackend, seen: inout Set<SHA256Digest>) throws -> MigratedSnapshot {
        let old: Manifest
        do {
            old = try loadManifest(storage, id)
        } catch RepositoryError.unreadableManifest(_, let reason) {
            throw MigrationError.damagedSnapshot(id: id, file: "manifest.json", reason: "cannot be read (\(reason))")
        }
        let payloadKeys = ["data.tar.zst", "data.zst"].map { RepositoryLayout.snapshotFile(id, $0) }
        if old.format >= 2 {
            // Converted by an interrupted run, perhaps up to its manifest only.
            let frames = try FrameList.decode(storage.read(RepositoryLayout.snapshotFile(id, "frames.tsv")), snapshot: id)
            for f in frames { seen.insert(f.id) }
            for key in payloadKeys { try storage.delete(key) }
            return MigratedSnapshot(id: id, kind: old.kind, source: old.source, frames: frames.count, framesNew: old.framesNew ?? 0,
                                    bytesNew: old.bytesNew ?? 0, payloadBytes: 0, alreadyConverted: true)
        }
        let name = old.payloadName
        func damaged(_ reason: String) -> MigrationError { .damagedSnapshot(id: id, file: name, reason: reason) }
        guard old.format == 1, let listed = old.frames else {
            throw damaged("cannot be converted: its manifest (format \(old.format)) lists no frames")
        }
        guard let stored = old.files.first(where: { $0.name == name }) else {
            throw damaged("is not among the files its manifest lists")
        }
        let key = RepositoryLayout.snapshotFile(id, name)
        let source: ByteSource
        do {
            guard try storage.exists(key) else { throw damaged("is missing") }
            source = try storage.open(key)
        }
        guard source.size == stored.size else { throw damaged("is \(source.size) bytes; the manifest says \(stored.size)") }
        let onFile: [FrameInfo]
        do { onFile = try SeekableZstdReader(source: source).frames } catch { throw damaged("has no valid seek table (\(error))") }
        guard onFile == listed else { throw damaged("has a seek table that differs from the frames its manifest lists") }

        // Each frame: decoded (its zstd checksum and size checked), hashed into its ID, its
        // compressed bytes stored as they are.
        let fileHash = SHA256Hasher(), streamHash = SHA256Hasher()
        let decompressor = ZstdDecompressor()
        var refs: [FrameRef] = []
        refs.reserveCapacity(listed.count)
        var framesNew = 0
        var bytesNew: Int64 = 0
        var position: Int64 = 0
        for (index, f) in listed.enumerated() {
            try Interruption.check()
            guard f.compressedOffset == position, f.uncompressedSize > 0 else { throw damaged("frame \(index) is not where the previous one ends") }
            guard f.uncompressedSize <= FrameWriter.maximumFrameSize else {
                throw damaged("frame \(index) holds \(f.uncompressedSize) bytes, more than a format-2 frame may (\(FrameWriter.maximumFrameSize))")
            }
            let compressed = try source.read(at: f.compressedOffset, count: f.compressedSize)
            position += Int64(f.compressedSize)
            fileHash.update(compressed)
            let decoded: [UInt8]
            do {
                decoded = try compressed.withUnsafeBytes { try decompressor.decompressFrame($0, expectedSize: f.uncompressedSize) }
            } catch {
                throw damaged("frame \(index) does not decode: \(error)")
            }
            streamHash.update(decoded)
            let frameID = SHA256Hasher.digest(decoded)
            let frameKey = RepositoryLayout.frame(frameID)
            var size = compressed.count
            if try storage.put(frameKey, compressed, mode: .createOnly) == .alreadyPresent {
                // Stored by an earlier snapshot (perhaps compressed otherwise), or by an
                // interrupted run: its size is what frames.tsv lists.
                size = Int(try storage.size(of: frameKey) ?? Int64(compressed.count))
            }
            if seen.insert(frameID).inserted {
                framesNew += 1
                bytesNew += Int64(size)
            }
            refs.append(FrameRef(id: frameID, uncompressedSize: f.uncompressedSize, compressedSize: size))
        }
        // The seek table: the rest of the file, which the file's digest covers too.
        fileHash.update(try source.read(at: position, count: Int(source.size - position)))
        guard fileHash.finalize() == stored.sha256 else { throw damaged("does not match its SHA-256 in the manifest") }
        if let expected = old.sha256, streamHash.finalize() != expected {
            throw damaged("decodes to a stream whose SHA-256 is not the manifest's")
        }
        FaultInjection.point("migrate-after-frames")

        let list = FrameList.encode(refs)
        try storage.put(RepositoryLayout.snapshotFile(id, "frames.tsv"), list, mode: .replace)
        FaultInjection.point("migrate-after-frames-tsv")

        var manifest = old
        manifest.format = Manifest.currentFormat
        manifest.frames = nil
        manifest.frameCount = refs.count
        manifest.framesNew = framesNew
        manifest.bytesNew = bytesNew
        manifest.files = [StoredFile(name: "frames.tsv", size: Int64(list.count), sha256: SHA256Hasher.digest(list))]
            + old.files.filter { $0.name == "entries.jsonl.zst" }
        manifest.bytesStored = refs.reduce(Int64(0)) { $0 + Int64($1.compressedSize) } + manifest.files.reduce(0) { $0 + $1.size }
        let manifestBytes = Array(try Timestamp.jsonEncoder().encode(manifest)) + [0x0A]
        var sums: [(String, SHA256Digest)] = manifest.files.map { ($0.name, $0.sha256) }
        sums.append(("manifest.json", SHA256Hasher.digest(manifestBytes)))
        let text = sums.sorted { $0.0 < $1.0 }.map { "\($0.1.hex)  \($0.0)\n" }.joined()
        try storage.put(RepositoryLayout.snapshotFile(id, "SHA256SUMS"), Array(text.utf8), mode: .replace)
        FaultInjection.point("migrate-after-sums")
        try Interruption.critical(unregistering: nil) {
            _ = try storage.put(RepositoryLayout.manifest(id), manifestBytes, mode: .replace)
        }
        FaultInjection.point("migrate-after-manifest")
        try storage.delete(key)
        return MigratedSnapshot(id: id, kind: old.kind, source: old.source, frames: refs.count, framesNew: framesNew,
                                bytesNew: bytesNew, payloadBytes: stored.size, alreadyConverted: false)
    }

    /// A catalog from before verification results were stored in the repository holds some
    /// only in its own rows: they are stored under `verifications/` (best effort) before the
    /// catalog is rebuilt, so the history survives.
    private static func keepCatalogOnlyVerifications(storage: StorageBackend, catalogFile: String, warn: (String) -> Void) {
        guard FileManager.default.fileExists(atPath: catalogFile) else { return }
        do {
            let old = try Catalog(path: catalogFile)
            try reconcileVerifications(old, storage: storage)
            try old.close()
        } catch {
            warn("the old catalog \(catalogFile) could not be read (\(Catalog.explain(error))); verification results it alone held are not kept (those under verifications/ are)")
        }
    }
}
