import Foundation

/// One stored file of a snapshot being written: a `FileSink` under `tmp/<id>/` with the digest of
/// what is stored.
final class StagedFile {
    let name: String
    let stored: HashingSink

    init(directory: String, name: String) throws {
        self.name = name
        stored = HashingSink(try FileSink(path: directory + "/" + name))
    }

    /// Valid after the chain in front of it finished.
    var record: StoredFile {
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
}

extension Repository {
    /// Writes one snapshot: stages it under `tmp/<id>/`, streams the payload through SHA-256 and the
    /// seekable zstd writer, and commits it atomically. The caller holds the writer lock.
    ///
    /// `body` gets the payload sink (the uncompressed stream; it marks boundaries) and, for
    /// filesystem snapshots, the entry-list sink. On any error the staging folder is removed and
    /// nothing is committed.
    func writeSnapshot(
        kind: SnapshotKind, options: BackupOptions,
        body: (_ payload: ByteSink, _ entries: ByteSink?) throws -> SnapshotBody
    ) throws -> Manifest {
        try options.validate()
        let startedAt = Repository.truncatedToMillis(options.time ?? Date())
        let clockStart = Date()
        let id = SnapshotID(startedAt: startedAt)
        let staging = try makeStagingDirectory(id)
        let removeOnSignal = Interruption.register { try? FileSystem.removeTree(staging) }
        defer { Interruption.unregister(removeOnSignal) }
        do {
            let level = options.compressionLevel ?? config.compression.level
            let payloadFile = try StagedFile(directory: staging, name: kind == .filesystem ? "data.tar.zst" : "data.zst")
            let stream = SeekableZstdWriter(downstream: payloadFile.stored, level: level, hashingInput: true)
            var entriesFile: StagedFile?
            var entriesSink: HashingSink?
            if kind == .filesystem {
                let f = try StagedFile(directory: staging, name: "entries.jsonl.zst")
                entriesFile = f
                entriesSink = HashingSink(SeekableZstdWriter(downstream: f.stored, level: level, frameSize: 256 << 10, minimumFrameAtBoundary: 64 << 10, workers: 1))
            }
            let result = try body(stream, entriesSink)
            try stream.finish()
            try entriesSink?.finish()
            let files = [payloadFile.record] + (entriesFile.map { [$0.record] } ?? [])
            let completedAt = Date(millisecondsSince1970: startedAt.millisecondsSince1970 + Int64(Date().timeIntervalSince(clockStart) * 1000))
            let manifest = Manifest(
                format: Manifest.currentFormat, id: id, kind: kind, source: options.source, host: options.host,
                tags: options.tags, runID: options.runID, paths: result.paths, dumpFormat: result.dumpFormat,
                startedAt: startedAt, completedAt: completedAt,
                bytesIn: stream.bytesIn, bytesStored: files.reduce(0) { $0 + $1.size },
                entryCount: result.entryCount, sha256: stream.inputDigest!, frames: stream.frames,
                sections: result.sections, files: files, warnings: result.warnings,
                toolVersion: BackstopVersion.current)
            try commit(staging: staging, manifest: manifest, cleanup: removeOnSignal)
            return manifest
        } catch {
            try? FileSystem.removeTree(staging)
            throw error
        }
    }
}

/// The staging folders (filesystem restores: `.backstop-restore-SUFFIX-HOST-BOOT-PID`) and files
/// (logical restores: `TARGET.backstop-restore-HOST-BOOT-PID`) that restores create beside their
/// target. HOST is this host's name, BOOT the first 8 hex digits of its boot ID: a restore
/// running on another host (a shared NFS target) or before a reboot is told apart from a dead one.
enum RestoreStaging {
    /// `HOST-BOOT-PID` of this process.
    static var owner: String { "\(FileSystem.hostName)-\(bootTag)-\(getpid())" }

    static var bootTag: String {
        let hex = (RepositoryLock.bootID() ?? "").filter(\.isHexDigit).lowercased()
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
        let host = FileSystem.hostName
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
            let abandoned = String(fields[fields.count - 2]) != boot || (pid != getpid() && !RepositoryLock.processIsAlive(pid))
            guard abandoned else { continue }
            if (try? FileSystem.removeTree(parent + "/" + name)) != nil { removed.append(name) }
        }
        return removed
    }
}
