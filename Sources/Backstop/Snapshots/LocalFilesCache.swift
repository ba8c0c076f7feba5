import Foundation

/// Encrypted repositories: the writer's own plaintext copy of what the files cache needs of its
/// newest filesystem snapshot of a source and host (the entry list, the frame list and the
/// warnings), so that a backup with the writer key alone (no identity, so the repository's
/// copies cannot be read) still reuses unchanged files.
///
/// Kept in this host's cache folder (`$XDG_CACHE_HOME/backstop`, else `~/.cache/backstop`),
/// `<repository id>/files-cache/<source>@<host digest>/<snapshot id>/`, never in the repository
/// (a local repository's folder holds its catalog, and may be a mount others read): folders
/// mode 0700, files 0600; only the newest snapshot's copy is kept. It reveals what the host
/// holds anyway: its files' names, sizes, owners, times and digests, and the frames' IDs.
///
/// Best effort: a copy that cannot be written or read only means the next backup reads every
/// file, as without the cache; it never fails a backup.
struct LocalFilesCache {
    let folder: String

    init(repository: Repository, source: String, host: String, cacheDirectory: String = RepositoryAddress.defaultCacheDirectory()) {
        let hostDigest = SHA256Hasher.digest(Array(host.utf8)).hex.prefix(16)
        folder = "\(cacheDirectory)/\(repository.config.id)/files-cache/\(source)@\(hostDigest)"
    }

    /// Whether a backup of `options` to `repository` keeps a local copy.
    static func applies(_ repository: Repository, _ options: BackupOptions) -> Bool {
        repository.storage is EncryptedBackend && options.filesCache
    }

    func snapshotFolder(_ id: SnapshotID) -> String { "\(folder)/\(id)" }

    /// The file the entry list is written to while the backup runs.
    func stagingEntries(_ id: SnapshotID) -> String { "\(folder)/.\(id).entries.tmp" }

    /// Opens the staging file of the entry list, or nil if it cannot be made.
    func startEntries(_ id: SnapshotID) -> FileSink? {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasPrefix(".") {
                try? FileManager.default.removeItem(atPath: "\(folder)/\(name)")   // an interrupted backup's
            }
            return try FileSink(path: stagingEntries(id), mode: 0o600)
        } catch {
            return nil
        }
    }

    /// After the snapshot is committed: the copy of `id` made whole, the older ones removed.
    func commit(_ id: SnapshotID, frameList: [UInt8], warnings: [String]) {
        let fm = FileManager.default
        let staging = "\(folder)/.\(id).tmp"
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try fm.moveItem(atPath: stagingEntries(id), toPath: staging + "/entries.jsonl.zst")
            try AgeKeyFile.writePrivate(frameList, to: staging + "/frames.tsv")
            try AgeKeyFile.writePrivate(Array(try JSONEncoder().encode(warnings)), to: staging + "/warnings.json")
            try fm.moveItem(atPath: staging, toPath: snapshotFolder(id))
        } catch {
            try? fm.removeItem(atPath: staging)
            try? fm.removeItem(atPath: stagingEntries(id))
            return
        }
        for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] where name != id.rawValue {
            try? fm.removeItem(atPath: "\(folder)/\(name)")
        }
    }

    /// A backup that failed: its staging file removed.
    func abandon(_ id: SnapshotID) {
        unlink(stagingEntries(id))
    }

    /// The copy of `id`, if this host has it.
    func read(_ id: SnapshotID) -> (frames: [FrameRef], entries: SeekableZstdReader, warnings: [String])? {
        let dir = snapshotFolder(id)
        guard let list = FileManager.default.contents(atPath: dir + "/frames.tsv"),
              let warningBytes = FileManager.default.contents(atPath: dir + "/warnings.json"),
              let warnings = try? JSONDecoder().decode([String].self, from: warningBytes),
              let frames = try? FrameList.decode(Array(list), snapshot: id),
              let source = try? FileByteSource(path: dir + "/entries.jsonl.zst", regularOnly: true),
              let entries = try? SeekableZstdReader(source: source) else { return nil }
        return (frames, entries, warnings)
    }
}

/// Passes what it is given to `main`, and a copy to `copy` as long as that works (the local
/// files cache: its failure never fails the backup).
final class BestEffortTeeSink: ByteSink {
    private let main: ByteSink
    private var copy: ByteSink?
    private(set) var copyComplete = true

    init(_ main: ByteSink, copy: ByteSink?) {
        self.main = main
        self.copy = copy
        copyComplete = copy != nil
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try main.write(bytes)
        if let c = copy {
            do { try c.write(bytes) } catch { copy = nil; copyComplete = false }
        }
    }

    func markBoundary() throws { try main.markBoundary() }

    func finish() throws {
        if let c = copy {
            do { try c.finish() } catch { copyComplete = false }
        }
        try main.finish()
    }
}
