import Foundation

/// One stored object of a snapshot being written: a streaming put under `snapshots/<id>/`, with
/// the digest of what is stored.
final class StagedFile {
    let name: String
    let writer: ObjectWriter
    let stored: HashingSink

    init(storage: StorageBackend, id: SnapshotID, name: String) throws {
        self.name = name
        writer = try storage.makeWriter(for: RepositoryLayout.snapshotFile(id, name))
        stored = HashingSink(writer)
    }

    /// Valid after the chain in front of it finished. On an encrypted repository, what was
    /// stored is the ciphertext, and that is what the record (and `SHA256SUMS`) covers.
    var record: StoredFile {
        if let sealed = writer as? EncryptingObjectWriter, let digest = sealed.storedDigest {
            return StoredFile(name: name, size: sealed.storedSize, sha256: digest)
        }
        guard let digest = stored.digest else { preconditionFailure("\(name) read before it was finished") }
        return StoredFile(name: name, size: stored.count, sha256: digest)
    }
}

/// What a snapshot body reports back to `Repository.writeSnapshot`.
struct SnapshotBody {
    var entryCount: Int
    var sections: [Section] = []
    var warnings: [String] = []
    var dumpFormat: DumpFormat? = nil
    var paths: [String] = []
    var filesReused: Int? = nil
    var binlogPosition: BinlogPosition? = nil
    var postgresBackup: PostgresBaseBackup? = nil
    var physicalBackup: PhysicalBackup? = nil
}

extension Repository {
    /// Writes one snapshot: streams the payload through SHA-256 and the seekable zstd writer
    /// into its objects under `snapshots/<id>/`, then commits it (the manifest last). The caller
    /// holds the writer lease.
    ///
    /// `body` gets the payload sink (the uncompressed stream; it marks boundaries) and, for
    /// filesystem snapshots, the entry-list sink. On any error, or a signal, what was written is
    /// removed and nothing is committed.
    func writeSnapshot(
        kind: SnapshotKind, options: BackupOptions,
        body: (_ payload: FrameWriter, _ entries: ByteSink?) throws -> SnapshotBody
    ) throws -> Manifest {
        try options.validate()
        let startedAt = Repository.truncatedToMillis(options.time ?? Date())
        let clockStart = Date()
        let id = SnapshotID(startedAt: startedAt)
        var staged: [StagedFile] = []
        let storage = self.storage
        // Frames are never removed here: they may be shared, and an unreferenced one is swept
        // by the next prune.
        let discard: @Sendable () -> Void = { [staged = UncheckedBox(value: { staged })] in
            for file in staged.value() { file.writer.abort() }
            for key in (try? storage.list(under: RepositoryLayout.snapshot(id))) ?? [] { try? storage.delete(key) }
        }
        let removeOnSignal = Interruption.register(discard)
        defer { Interruption.unregister(removeOnSignal) }
        var writer: FrameWriter?
        var localCache: LocalFilesCache?
        var entriesTee: BestEffortTeeSink?
        do {
            let level = options.compressionLevel ?? config.compression.level
            let payload = FrameWriter(storage: storage, level: level, contentDefined: kind == .logical, cutAtBoundaries: kind == .logical)
            writer = payload
            var entriesFile: StagedFile?
            var entriesSink: HashingSink?
            if kind == .filesystem {
                let f = try StagedFile(storage: storage, id: id, name: "entries.jsonl.zst")
                staged.append(f)
                entriesFile = f
                // An encrypted repository: the writer keeps its own plaintext copy of the entry
                // list for the next backup's files cache (LocalFilesCache).
                if LocalFilesCache.applies(self, options) {
                    let cache = LocalFilesCache(repository: self, source: options.source, host: options.host)
                    localCache = cache
                    entriesTee = BestEffortTeeSink(f.stored, copy: cache.startEntries(id))
                }
                entriesSink = HashingSink(SeekableZstdWriter(downstream: entriesTee ?? f.stored, level: level, frameSize: 256 << 10, minimumFrameAtBoundary: 64 << 10, workers: 1))
            }
            let result = try body(payload, entriesSink)
            try payload.finish()
            try entriesSink?.finish()
            for file in staged { try putCommitted(file) }
            let list = FrameList.encode(payload.frames)
            let frameFile = try putFrameList(RepositoryLayout.snapshotFile(id, "frames.tsv"), list)
            let files = [frameFile] + (entriesFile.map { [$0.record] } ?? [])
            let frameBytes = payload.frames.reduce(Int64(0)) { $0 + Int64($1.compressedSize) }
            let completedAt = Date(millisecondsSince1970: startedAt.millisecondsSince1970 + Int64(Date().timeIntervalSince(clockStart) * 1000))
            var manifest = Manifest(
                format: Manifest.currentFormat, id: id, kind: kind, source: options.source, host: options.host,
                tags: options.tags, runID: options.runID, paths: result.paths, dumpFormat: result.dumpFormat,
                startedAt: startedAt, completedAt: completedAt,
                bytesIn: payload.bytesIn, bytesStored: frameBytes + files.reduce(0) { $0 + $1.size },
                bytesNew: payload.bytesNew, frameCount: payload.frames.count, framesNew: payload.framesNew,
                entryCount: result.entryCount, filesReused: result.filesReused, sha256: nil, frames: nil,
                sections: result.sections, files: files, warnings: result.warnings,
                toolVersion: BackstopVersion.current)
            manifest.binlogPosition = result.binlogPosition
            manifest.postgresBackup = result.postgresBackup
            manifest.physicalBackup = result.physicalBackup
            try commit(manifest: manifest, frames: payload.frames, cleanup: removeOnSignal)
            if let localCache, entriesTee?.copyComplete == true {
                localCache.commit(id, frameList: list, warnings: result.warnings)
            } else {
                localCache?.abandon(id)
            }
            return manifest
        } catch {
            localCache?.abandon(id)
            writer?.abandon()
            discard()
            throw error
        }
    }

    /// Stores `frames.tsv` (create-only) and returns its record: of the ciphertext on an
    /// encrypted repository.
    func putFrameList(_ key: StorageKey, _ list: [UInt8]) throws -> StoredFile {
        guard let encrypted = storage as? EncryptedBackend else {
            try putNew(key, list)
            return StoredFile(name: "frames.tsv", size: Int64(list.count), sha256: SHA256Hasher.digest(list))
        }
        let stored = try encrypted.putSealed(key, list, mode: .createOnly)
        if stored.outcome == .alreadyPresent {
            throw RepositoryError.io(path: "\(storage.location): \(key)", operation: "create", errno: EEXIST)
        }
        return StoredFile(name: "frames.tsv", size: stored.size, sha256: stored.sha256)
    }

    /// Publishes a finished snapshot object; one already there was not written by us.
    private func putCommitted(_ file: StagedFile) throws {
        if try file.writer.commit(mode: .createOnly) == .alreadyPresent {
            throw RepositoryError.io(path: "\(storage.location): \(file.writer.key)", operation: "create", errno: EEXIST)
        }
    }
}

/// A value the compiler cannot prove sendable, handed to the interruption watcher, which runs
/// its cleanup only while the owning thread is stopped at a critical step or unwinding.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
}

/// The staging folders (filesystem restores: `.backstop-restore-SUFFIX-HOST-BOOT-PID`) and files
/// (logical restores: `TARGET.backstop-restore-HOST-BOOT-PID`) that restores create beside their
/// target. HOST is this host's name, BOOT the first 8 hex digits of its boot ID: a restore
/// running on another host (a shared NFS target) or before a reboot is told apart from a dead one.
enum RestoreStaging {
    /// `HOST-BOOT-PID` of this process.
    static var owner: String { "\(ProcessIdentity.hostName)-\(bootTag)-\(getpid())" }

    static var bootTag: String {
        let hex = (ProcessIdentity.bootID() ?? "").filter(\.isHexDigit).lowercased()
        return hex.isEmpty ? "00000000" : String(hex.prefix(8))
    }

    /// The staging folder of a filesystem restore of `snapshot`, beside the target.
    static func folderName(_ snapshot: SnapshotID) -> String { ".backstop-restore-\(snapshot.suffix)-\(owner)" }

    /// The staging file of a logical restore to `target` (a path).
    static func filePath(_ target: String) -> String { target + ".backstop-restore-\(owner)" }

    /// Removes, beside `target`, the restore staging folders and files of this host whose process
    /// is no longer running (a restore killed with SIGKILL, or a crash) or ran before the last
    /// reboot. Those of other hosts, and names without a host, are kept. Returns their names.
    @discardableResult
    static func removeAbandoned(beside target: String) -> [String] {
        let parent = (target as NSString).deletingLastPathComponent
        guard let names = try? FileSystem.list(parent.isEmpty ? "." : parent) else { return [] }
        let host = ProcessIdentity.hostName
        let boot = bootTag
        var removed: [String] = []
        for name in names {
            guard let marker = name.range(of: ".backstop-restore-", options: .backwards) else { continue }
            // HOST-BOOT-PID, preceded by SUFFIX- in folder names; the host may hold dashes.
            let fields = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
            guard fields.count >= 3, let pid = Int32(fields[fields.count - 1]), pid > 0,
                  fields[fields.count - 2].count == 8 else { continue }
            let hostPart = fields.dropLast(2).joined(separator: "-")
            guard hostPart == host || hostPart.hasSuffix("-" + host) else { continue }
            let abandoned = String(fields[fields.count - 2]) != boot || (pid != getpid() && !ProcessIdentity.isAlive(pid))
            guard abandoned else { continue }
            if (try? FileSystem.removeTree(parent + "/" + name)) != nil { removed.append(name) }
        }
        return removed
    }
}
