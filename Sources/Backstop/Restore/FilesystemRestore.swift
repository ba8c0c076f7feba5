import Foundation

/// What a restore did.
public struct RestoreReport: Codable, Sendable {
    public var snapshot: SnapshotID
    public var target: String
    public var entries: Int
    public var bytesWritten: Int64
    /// Stored (compressed) bytes read from the repository.
    public var bytesRead: Int64
    public var framesRead: Int
    public var framesTotal: Int
    /// Where an existing target was moved (with --force).
    public var movedAside: String?
    public var warnings: [String]
}

/// Restores a filesystem snapshot, or the entries matching `includes`, into a directory.
///
/// Extraction goes to a staging folder beside the target, which is renamed into place only
/// when every entry's digest matched (and every frame its ID, as it was decoded). Entries are
/// refused when absolute, when they contain `..`, when a hard link escapes or carries data, and
/// when they would be written through a symlink, when their path already exists in the restore (a path declared twice), and when
/// a hard link points to anything but a regular file; see `DiskWriter`, which never follows a
/// symlink. Names are restored as their exact bytes. With `includes`, only the frames that hold
/// the chosen entries are decoded.
///
/// Crash behaviour: the target itself is never partly written. A crash (or SIGKILL) leaves a
/// `.backstop-restore-*-PID` folder beside the target until the next restore beside that target,
/// which removes those of processes no longer running (`RestoreStaging.removeAbandoned`); SIGINT
/// and SIGTERM remove it at once. With `force`, an existing target is moved aside to
/// `TARGET.before-restore-<time>`, never deleted.
public struct FilesystemRestore {
    public var repository: Repository
    public var manifest: Manifest
    public var includes: [String]
    public var force: Bool
    /// Like GNU tar's `--no-same-owner`: never restore owners (they are restored only when
    /// running as root, and not with this).
    public var noSameOwner: Bool
    /// Like GNU tar's `--no-same-permissions`: drop setuid, setgid and sticky bits and apply the
    /// umask (by default modes are restored exactly).
    public var noSamePermissions: Bool
    /// Hears the content bytes written so far, of the total, and the entry being written.
    public var progress: RestoreProgress?

    public init(repository: Repository, manifest: Manifest, includes: [String] = [], force: Bool = false,
                noSameOwner: Bool = false, noSamePermissions: Bool = false) {
        self.repository = repository
        self.manifest = manifest
        self.includes = includes
        self.force = force
        self.noSameOwner = noSameOwner
        self.noSamePermissions = noSamePermissions
    }

    public func run(to targetPath: String) throws -> RestoreReport {
        guard manifest.kind == .filesystem else { throw RestoreError.wrongKind(snapshot: manifest.id, wanted: "a filesystem snapshot") }
        let target = URL(fileURLWithPath: targetPath).standardizedFileURL.path
        _ = try RestoreTarget.checkDirectory(target, force: force)
        try repository.checkBeforeRestore(manifest)
        let reader = SnapshotReader(repository: repository, manifest: manifest)
        let allEntries: [EntryRecord]
        do { allEntries = try reader.entries() } catch let e as Interrupted { throw e } catch {
            throw RestoreError.reading(error, snapshot: manifest.id, file: "entries.jsonl.zst", location: "")
        }
        let selected = try choose(allEntries)
        let payload: SeekableZstdReader
        do { payload = try reader.payload() } catch let e as Interrupted { throw e } catch {
            throw RestoreError.reading(error, snapshot: manifest.id, file: manifest.payloadName, location: "seek table")
        }

        let parent = (target as NSString).deletingLastPathComponent
        try FileSystem.makeDirectory(parent)
        let staging = parent + "/" + RestoreStaging.folderName(manifest.id)
        RestoreStaging.removeAbandoned(beside: target)
        try? FileSystem.removeTree(staging)
        try FileSystem.makeDirectory(staging, mode: 0o755)
        let removeOnSignal = Interruption.register { try? FileSystem.removeTree(staging) }
        defer { Interruption.unregister(removeOnSignal) }
        var report: RestoreReport
        do {
            report = try extract(selected: selected, whole: includes.isEmpty, payload: payload, into: staging)
        } catch {
            try? FileSystem.removeTree(staging)
            throw error
        }
        // Checked again: something may have appeared at the target while we restored. Moving
        // the old target aside and renaming staging into place are one critical step: a signal
        // either stops both (the target stays where it was) or neither.
        do {
            try Interruption.critical(unregistering: removeOnSignal) {
                switch try RestoreTarget.checkDirectory(target, force: force) {
                case .replace: break
                case .replaceEmptyDirectory:
                    if rmdir(target) != 0 { throw RepositoryError.io(path: target, operation: "replace empty directory", errno: errno) }
                case .moveAside:
                    report.movedAside = try RestoreTarget.moveAside(target)
                }
                try FileSystem.rename(staging, target)
            }
        } catch {
            try? FileSystem.removeTree(staging)
            throw error
        }
        report.target = target
        return report
    }

    /// The entries to restore: all, or those matching `includes`. A pattern matches a whole path
    /// (`fnmatch`), or, without `/`, a base name anywhere; a matched directory brings its contents
    /// and a hard link brings its target. Names are compared as bytes.
    func choose(_ all: [EntryRecord]) throws -> [EntryRecord] {
        guard !includes.isEmpty else { return all }
        let patterns = includes.map { g in (Array(g.utf8CString), g.contains("/"), Array((g.hasSuffix("/") ? String(g.dropLast()) : g).utf8)) }
        func matches(_ path: [UInt8]) -> Bool {
            let cPath = path.map { CChar(bitPattern: $0) } + [0]
            let base = Array(path.split(separator: 0x2F).last ?? [])
            let cBase = base.map { CChar(bitPattern: $0) } + [0]
            return patterns.contains { glob, hasSlash, literal in
                fnmatch(glob, cPath, 0) == 0 || path == literal || (!hasSlash && fnmatch(glob, cBase, 0) == 0)
            }
        }
        var wanted = Set<[UInt8]>()
        var directories = Set<[UInt8]>()
        for e in all {
            // Inside a chosen directory (any ancestor chosen), or matching itself.
            var inside = false
            var i = e.rawPath.count
            while i > 0, !inside {
                i -= 1
                if e.rawPath[i] == 0x2F, directories.contains(Array(e.rawPath[..<i])) { inside = true }
            }
            guard inside || matches(e.rawPath) else { continue }
            wanted.insert(e.rawPath)
            if e.type == .directory { directories.insert(e.rawPath) }
        }
        guard !wanted.isEmpty else { throw RestoreError.nothingIncluded(patterns: includes) }
        for e in all where wanted.contains(e.rawPath) && e.type == .hardlink {
            if let t = e.rawLinkTarget { wanted.insert(t) }
        }
        return all.filter { wanted.contains($0.rawPath) }
    }

    private func extract(selected: [EntryRecord], whole: Bool, payload: SeekableZstdReader, into staging: String) throws -> RestoreReport {
        let id = manifest.id
        let source = payload.source
        var framesRead = Set<Int>()
        let pull: () throws -> [UInt8]?
        if whole {
            // Every frame is checked against its ID as it is decoded, and frames.tsv (which lists
            // the IDs) against the manifest: the stream is proven without hashing it again.
            let frames = FrameStream(reader: payload)
            pull = {
                do {
                    guard let (index, bytes, _) = try frames.nextWithCompressed() else { return nil }
                    framesRead.insert(index)
                    return bytes
                } catch let e as FrameError {
                    throw RestoreError.reading(e.underlying, snapshot: id, file: manifest.payloadName, location: "frame \(e.frame)")
                }
            }
        } else {
            var chunks = RangeChunks(payload: payload, ranges: selected.map { $0.offset..<($0.offset + $0.length) }, id: id, file: manifest.payloadName)
            pull = {
                let next = try chunks.next()
                framesRead = chunks.decoded
                return next
            }
        }

        let tar = try TarReader(next: pull)
        let disk = try DiskWriter(root: staging, restoreOwners: getuid() == 0 && !noSameOwner, samePermissions: !noSamePermissions)
        var index = 0
        var bytes: Int64 = 0
        var warnings: [String] = []
        let total = selected.reduce(Int64(0)) { $0 + ($1.type == .file ? $1.size : 0) }
        while let entry = try nextEntry(tar) {
            guard index < selected.count else {
                throw RestoreError.corrupt(snapshot: id, file: manifest.payloadName, location: "entry \(entry.path)", reason: "not in the entry list")
            }
            let expected = selected[index]
            index += 1
            try Self.refuseHostile(entry, id: id)
            guard expected.rawPath == entry.rawPath, expected.type == entry.type else {
                throw RestoreError.corrupt(snapshot: id, file: "entries.jsonl.zst", location: "entry \(expected.path)",
                                           reason: "the tar has \(entry.type.rawValue) \(entry.path) there")
            }
            try onDisk(entry) { try disk.create(entry) }
            let hasher = SHA256Hasher()
            var size: Int64 = 0
            try readData(tar, entry: entry) { chunk, hole in
                hasher.update(chunk)
                size += Int64(chunk.count)
                try onDisk(entry) { try disk.write(chunk, hole: hole) }
                progress?(bytes + size, total, entry.path)
            }
            bytes += size
            if entry.type == .file, let want = expected.sha256, hasher.finalize() != want || size != expected.size {
                throw RestoreError.corrupt(snapshot: id, file: manifest.payloadName, location: "entry \(entry.path)",
                                           reason: "content digest does not match the entry list")
            }
            try onDisk(entry) { try disk.finishEntry() }
        }
        guard index == selected.count else {
            throw RestoreError.corrupt(snapshot: id, file: manifest.payloadName, location: "entry \(selected[index].path)", reason: "missing from the tar stream")
        }
        try onDisk(nil) { try disk.close() }
        warnings += disk.warnings
        if whole {
            while try pull() != nil {}
        }
        return RestoreReport(snapshot: id, target: "", entries: index, bytesWritten: bytes, bytesRead: source.bytesRead,
                             framesRead: framesRead.count, framesTotal: payload.frames.count, movedAside: nil, warnings: warnings)
    }

    private func nextEntry(_ tar: TarReader) throws -> TarEntry? {
        do { return try tar.nextEntry() } catch let e as RestoreError { throw e } catch let e as Interrupted { throw e } catch {
            throw RestoreError.corrupt(snapshot: manifest.id, file: manifest.payloadName, location: "tar", reason: "\(error)")
        }
    }

    private func readData(_ tar: TarReader, entry: TarEntry, _ body: (UnsafeRawBufferPointer, Bool) throws -> Void) throws {
        do { try tar.readPieces(body) } catch let e as ArchiveError {
            throw RestoreError.corrupt(snapshot: manifest.id, file: manifest.payloadName, location: "entry \(entry.path)", reason: "\(e)")
        }
    }

    /// Runs a disk writer call: a refused entry is a hostile snapshot (65); a failure of the
    /// target's filesystem stays an `ExtractionError.io` (74), not the snapshot's fault.
    private func onDisk(_ entry: TarEntry?, _ body: () throws -> Void) throws {
        do { try body() } catch let ExtractionError.refused(path, reason) {
            throw RestoreError.hostileEntry(snapshot: manifest.id, path: path, reason: reason)
        }
    }

    /// Our own checks, before the disk writer's: relative paths without `..`, contained hard
    /// links without data. Names are checked as bytes.
    static func refuseHostile(_ entry: TarEntry, id: SnapshotID) throws {
        func check(_ path: [UInt8], what: String) throws {
            if path.isEmpty { throw RestoreError.hostileEntry(snapshot: id, path: entry.path, reason: "\(what) is empty") }
            if path.first == 0x2F { throw RestoreError.hostileEntry(snapshot: id, path: entry.path, reason: "\(what) is absolute") }
            if path.split(separator: 0x2F).contains(where: { $0.elementsEqual([0x2E, 0x2E]) }) {
                throw RestoreError.hostileEntry(snapshot: id, path: entry.path, reason: "\(what) contains '..'")
            }
        }
        try check(entry.rawPath, what: "path")
        if entry.type == .hardlink {
            try check(entry.rawLinkTarget ?? [], what: "hard link target")
            if entry.size > 0 { throw RestoreError.hostileEntry(snapshot: id, path: entry.path, reason: "hard link carries data") }
        }
    }
}

/// Yields the bytes of chosen ranges of a seekable payload, decoding each frame once, then the
/// two zero blocks that end a tar archive.
struct RangeChunks {
    let payload: SeekableZstdReader
    var ranges: [Range<Int64>]
    let id: SnapshotID
    let file: String
    private(set) var decoded = Set<Int>()
    private var cached: (index: Int, bytes: [UInt8])?
    private var rangeIndex = 0
    private var position: Int64
    private var ended = false

    init(payload: SeekableZstdReader, ranges: [Range<Int64>], id: SnapshotID, file: String) {
        self.payload = payload
        // Coalesce touching ranges.
        var merged: [Range<Int64>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, last.upperBound >= r.lowerBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        self.ranges = merged
        self.id = id
        self.file = file
        position = merged.first?.lowerBound ?? 0
    }

    mutating func next() throws -> [UInt8]? {
        while rangeIndex < ranges.count {
            let r = ranges[rangeIndex]
            if position >= r.upperBound {
                rangeIndex += 1
                if rangeIndex < ranges.count { position = ranges[rangeIndex].lowerBound }
                continue
            }
            guard let frameIndex = payload.frameIndex(containing: position) else {
                throw RestoreError.corrupt(snapshot: id, file: file, location: "offset \(position)", reason: "beyond the end of the payload")
            }
            if cached?.index != frameIndex {
                do {
                    cached = (frameIndex, try payload.decodeFrame(frameIndex))
                } catch let e as Interrupted {
                    throw e  // never corruption
                } catch {
                    throw RestoreError.reading(error, snapshot: id, file: file, location: "frame \(frameIndex)")
                }
                decoded.insert(frameIndex)
            }
            let f = payload.frames[frameIndex]
            let from = Int(position - f.uncompressedOffset)
            let to = Int(min(r.upperBound, f.uncompressedEnd) - f.uncompressedOffset)
            position += Int64(to - from)
            return Array(cached!.bytes[from..<to])
        }
        if !ended {
            ended = true
            return [UInt8](repeating: 0, count: 1024)
        }
        return nil
    }
}
