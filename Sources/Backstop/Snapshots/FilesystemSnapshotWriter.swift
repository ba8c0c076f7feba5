import Foundation

/// Takes filesystem snapshots: walks the paths in sorted order and writes a pax tar stream and
/// the entry list, in one pass that hashes and compresses.
///
/// Each path is stored under its own base name (`/mnt/mysql-snapshot/ibdata1` becomes
/// `mysql-snapshot/ibdata1`), so `tar -x` of the payload makes one folder per path. A top-level
/// path that is a symlink is followed; symlinks below it are stored as symlinks.
///
/// A file that cannot be read is skipped and one that changes while read is stored as read; both
/// become warnings in the manifest, and the snapshot still completes.
///
/// With the files cache (`BackupOptions.filesCache`, on by default) and a parent snapshot, an
/// unchanged file's frames are the parent's, appended without reading the file (see
/// `FilesCacheParent`).
public struct FilesystemSnapshotWriter {
    public var paths: [String]
    public var excludes: [String]
    public var options: BackupOptions
    public var progress: ((BackupProgress) -> Void)?
    /// What the walk read, for callers that want to see it (tests).
    public var counters: FilesystemWalkCounters?
    /// What the manifest's `paths` records instead of the paths walked (a temporary folder's
    /// names mean nothing later: `MariaBackupSnapshotWriter`).
    var recordedPaths: [String]?
    /// A hot physical backup's record (`MariaBackupSnapshotWriter`).
    var physicalBackup: PhysicalBackup?

    public init(paths: [String], excludes: [String] = [], options: BackupOptions, progress: ((BackupProgress) -> Void)? = nil,
                counters: FilesystemWalkCounters? = nil) {
        self.paths = paths
        self.excludes = excludes
        self.options = options
        self.progress = progress
        self.counters = counters
    }

    /// Writes and commits the snapshot. The caller holds the repository's writer lock.
    public func write(to repository: Repository) throws -> Manifest {
        var roots: [(disk: String, name: String)] = []
        for p in paths {
            let absolute = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
            var st = stat()
            guard stat(absolute, &st) == 0 else { throw BackupError.missingPath(p) }
            let standardized = URL(fileURLWithPath: absolute).standardizedFileURL.path
            var name = (standardized as NSString).lastPathComponent
            if name == "/" || name.isEmpty { name = "root" }
            roots.append((standardized, name))
        }
        let byName = Dictionary(grouping: roots, by: \.name)
        if let clash = byName.first(where: { $0.value.count > 1 }) {
            throw BackupError.duplicateName(clash.key, paths: clash.value.map(\.disk))
        }
        let parent = options.filesCache ? FilesCacheParent.find(repository: repository, options: options) : nil
        let counters = self.counters ?? FilesystemWalkCounters()
        return try repository.writeSnapshot(kind: .filesystem, options: options) { payload, entries in
            let walker = try TreeWalker(payload: payload, entries: entries!, excludes: excludes, progress: progress,
                                        parent: parent, counters: counters)
            for root in roots.sorted(by: { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }) {
                try walker.add(diskPath: Array(root.disk.utf8), storedPath: Array(root.name.utf8), isRoot: true)
            }
            try walker.finish()
            return SnapshotBody(entryCount: walker.entryCount, warnings: walker.warnings, paths: recordedPaths ?? roots.map(\.disk),
                                filesReused: parent == nil ? nil : counters.filesReused,
                                binlogPosition: physicalBackup?.binlog, physicalBackup: physicalBackup)
        }
    }
}

/// What a filesystem snapshot's walk read and reused (an observable count, for tests and
/// benchmarks).
public final class FilesystemWalkCounters: @unchecked Sendable {
    /// Bytes of file content read from disk.
    public internal(set) var bytesRead: Int64 = 0
    /// Regular files whose content was read.
    public internal(set) var filesRead = 0
    /// Regular files whose frames were reused from the parent without reading them.
    public internal(set) var filesReused = 0

    public init() {}
}

/// The recursive walk behind `FilesystemSnapshotWriter`.
///
/// Names are bytes from `readdir` to the tar header and the entry list, never a `String` (which
/// would repair invalid UTF-8 and compare NFC and NFD spellings as equal); each directory's names
/// are sorted bytewise. Warnings show names escaped (`EntryRecord.escaped`).
/// Where frames end (the frame cuts of DESIGN.md, "Repository format (version 2)"), so that an
/// unchanged file yields the same frames night after night, whatever changed around it:
///
/// - a file of at least `largeFile` bytes starts a new frame at its header, is cut every
///   `piece` bytes of its content (a page rewritten in place changes one frame), and ends its
///   last frame;
/// - smaller files and entries without data are grouped: a group ends after an entry when it
///   holds at least `groupMinimum` bytes and a hash of the entry's path, scaled by the entry's
///   length, falls under a threshold (about one cut per `groupTarget` bytes), or once it holds
///   `groupMaximum` bytes. The decision depends on the entry's path and length alone, so a
///   changed file changes its own group, and the groups after it resynchronise at once;
/// - the end-of-archive blocks are a frame of their own.
enum FrameCuts {
    static let largeFile: Int64 = 1 << 20
    static let piece: Int64 = 1 << 20
    // Groups are small (about 128 KiB) so that changes spread over many small files (1% of the
    // files of a tree, one here and one there) cost about 128 KiB each, not a megabyte: measured
    // with scripts/bench-incremental.sh. Large files keep 1 MiB pieces (restic's average chunk).
    static let groupTarget: Int64 = 128 << 10
    static let groupMinimum = 16 << 10
    static let groupMaximum = 512 << 10

    /// Whether a group ends after an entry of `length` tar bytes at `path`.
    static func endsGroup(path: [UInt8], length: Int64, groupBytes: Int) -> Bool {
        if groupBytes >= groupMaximum { return true }
        guard groupBytes >= groupMinimum else { return false }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325   // FNV-1a, 64 bits
        for b in path { hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        let threshold = UInt64(min(length, groupTarget)) << 20 / UInt64(groupTarget)
        return hash % (1 << 20) < threshold
    }
}

private final class TreeWalker {
    let tar: TarWriter
    let payload: FrameWriter
    let entries: ByteSink
    let excludes: [String]
    let progress: ((BackupProgress) -> Void)?
    let encoder = Timestamp.jsonEncoder(pretty: false)
    var warnings: [String] = []
    var entryCount = 0
    var bytesIn: Int64 = 0
    var lastProgress: Int64 = 0
    /// The stored path of the file being read, for progress.
    var currentPath: [UInt8] = []
    var firstPathOfInode: [String: [UInt8]] = [:]
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    /// Holes are hashed (and passed to the tar writer, which skips them) from here, never read.
    let zeros = [UInt8](repeating: 0, count: 1 << 20)
    let parent: FilesCacheParent?
    let counters: FilesystemWalkCounters

    /// Files cache: unchanged small entries held back, not yet written, while they may make up
    /// one whole frame of the parent (see `offerSmall`).
    private struct Held {
        var diskPath: [UInt8]
        var storedPath: [UInt8]
        var st: stat
        var hardlinkTo: [UInt8]?
        var record: CachedEntry
    }
    private var held: [Held] = []
    /// The parent frame the held entries start, and where they end in the parent's stream.
    private var heldFrame = 0
    private var heldEnd: Int64 = 0

    init(payload: FrameWriter, entries: ByteSink, excludes: [String], progress: ((BackupProgress) -> Void)?,
         parent: FilesCacheParent?, counters: FilesystemWalkCounters) throws {
        self.payload = payload
        self.entries = entries
        self.excludes = excludes
        self.progress = progress
        self.parent = parent
        self.counters = counters
        tar = try TarWriter(sink: payload)
    }

    func isExcluded(_ storedPath: [UInt8]) -> Bool {
        if excludes.isEmpty { return false }
        let base = Array(storedPath.split(separator: 0x2F, omittingEmptySubsequences: false).last ?? [])
        return withBytesAsCString(storedPath) { path in
            withBytesAsCString(base) { name in
                excludes.contains { pattern in
                    fnmatch(pattern, path, 0) == 0 || (!pattern.contains("/") && fnmatch(pattern, name, 0) == 0)
                }
            }
        }
    }

    func add(diskPath: [UInt8], storedPath: [UInt8], isRoot: Bool) throws {
        if !isRoot && isExcluded(storedPath) { return }
        var st = stat()
        let statResult = withBytesAsCString(diskPath) { isRoot ? stat($0, &st) : lstat($0, &st) }
        if statResult != 0 {
            warnings.append("\(EntryRecord.escaped(storedPath)): skipped, cannot stat: \(String(cString: strerror(errno)))")
            return
        }
        let type = st.st_mode & S_IFMT
        switch type {
        case S_IFSOCK:
            warnings.append("\(EntryRecord.escaped(storedPath)): skipped, sockets cannot be stored in tar")
        case S_IFREG:
            try addFile(diskPath: diskPath, storedPath: storedPath, st: st)
        case S_IFDIR:
            try addDirectory(diskPath: diskPath, storedPath: storedPath, st: st)
        default:
            try addMetadataOnly(diskPath: diskPath, storedPath: storedPath, st: st)
        }
    }

    /// The type `st` is stored as (`hardlinkTo`: a hard link).
    private static func entryType(_ st: stat, hardlinkTo: [UInt8]?) -> EntryType {
        if hardlinkTo != nil { return .hardlink }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        case S_IFIFO: return .fifo
        case S_IFCHR: return .characterDevice
        case S_IFBLK: return .blockDevice
        default: return .file
        }
    }

    /// An entry without data: a directory, symlink, device, fifo, or a hard link to `hardlinkTo`.
    private func addMetadataOnly(diskPath: [UInt8], storedPath: [UInt8], st: stat, hardlinkTo: [UInt8]? = nil) throws {
        if let parent, let r = parent.unchanged(path: storedPath, stat: st, type: Self.entryType(st, hardlinkTo: hardlinkTo), hardlinkTo: hardlinkTo),
           try offerSmall(Held(diskPath: diskPath, storedPath: storedPath, st: st, hardlinkTo: hardlinkTo, record: r)) {
            return
        }
        try releaseHeld()
        if hardlinkTo != nil {
            try writeLinkOrFile(diskPath: diskPath, storedPath: storedPath, st: st)
        } else {
            try writeMetadataOnly(diskPath: diskPath, storedPath: storedPath, st: st, hardlinkTo: nil)
        }
    }

    /// A hard link to its inode's first stored path as it is now: a first path held by the files
    /// cache that could not be stored after all (it vanished before it was read) is forgotten,
    /// and this path is then stored as the file.
    private func writeLinkOrFile(diskPath: [UInt8], storedPath: [UInt8], st: stat) throws {
        if let first = firstPathOfInode["\(st.st_dev):\(st.st_ino)"] {
            try writeMetadataOnly(diskPath: diskPath, storedPath: storedPath, st: st, hardlinkTo: first)
        } else {
            try writeFile(diskPath: diskPath, storedPath: storedPath, st: st)
        }
    }

    private func writeMetadataOnly(diskPath: [UInt8], storedPath: [UInt8], st: stat, hardlinkTo: [UInt8]?) throws {
        let offset = tar.offset
        try payload.markBoundary()
        let (meta, warning) = try tar.writeHeader(diskPath: diskPath, storedPath: storedPath, stat: st, fd: -1, hardlinkTo: hardlinkTo)
        if let warning { warnings.append("\(EntryRecord.escaped(storedPath)): \(warning)") }
        try tar.finishEntry()
        try record(storedPath, meta, digest: nil, offset: offset, st: st)
        try endOfSmallEntry(storedPath, length: tar.offset - offset)
    }

    /// Files cache, small entries: an unchanged entry is held back (not written) while the held
    /// entries, from a frame start in both streams, are exactly the parent's entries in that
    /// order; once they fill the parent's frame, that frame is appended unread. Their group ends
    /// where the parent's did, since group ends depend on paths and lengths only. Returns false
    /// when the entry cannot be held (then the caller writes it).
    private func offerSmall(_ entry: Held) throws -> Bool {
        guard let parent else { return false }
        let r = entry.record
        if !held.isEmpty && r.offset != heldEnd { try releaseHeld() }
        if held.isEmpty {
            guard payload.pendingBytes == 0, let frame = parent.frameIndex(startingAt: r.offset) else { return false }
            heldFrame = frame
        }
        held.append(entry)
        heldEnd = r.offset + r.length
        let frameEnd = parent.starts[heldFrame + 1]
        if heldEnd == frameEnd {
            let frame = parent.frames[heldFrame...heldFrame]
            guard parent.stored(frame) else { try releaseHeld(); return true }
            try payload.append(reused: Array(frame))
            let base = tar.offset, start = parent.starts[heldFrame]
            tar.skip(bytes: frameEnd - start)
            for h in held {
                try write(h.record, at: base + (h.record.offset - start))
                if h.record.type == .file {
                    counters.filesReused += 1
                    bytesIn += h.record.size
                }
            }
            held.removeAll(keepingCapacity: true)
        } else if heldEnd > frameEnd {
            // The parent's frame ends inside this entry: it cannot be reused.
            try releaseHeld()
        }
        return true
    }

    /// Writes the held entries as any others (reading their files).
    private func releaseHeld() throws {
        guard !held.isEmpty else { return }
        let entries = held
        held.removeAll(keepingCapacity: true)
        for h in entries {
            if h.record.type == .file {
                try writeFile(diskPath: h.diskPath, storedPath: h.storedPath, st: h.st)
            } else if h.hardlinkTo != nil {
                try writeLinkOrFile(diskPath: h.diskPath, storedPath: h.storedPath, st: h.st)
            } else {
                try writeMetadataOnly(diskPath: h.diskPath, storedPath: h.storedPath, st: h.st, hardlinkTo: h.hardlinkTo)
            }
        }
    }

    /// Files cache, large files: the parent's frames of the unchanged file (which start at its
    /// header and end after its data) are appended unread. False when they cannot be.
    private func reuseLarge(_ r: CachedEntry) throws -> Bool {
        guard let parent, let frames = parent.frames(covering: r.offset, length: r.length), parent.stored(frames) else { return false }
        try payload.append(reused: Array(frames))
        try write(r, at: tar.offset)
        tar.skip(bytes: r.length)
        counters.filesReused += 1
        bytesIn += r.size
        return true
    }

    /// Ends the group after a small entry when `FrameCuts` says so.
    private func endOfSmallEntry(_ path: [UInt8], length: Int64) throws {
        if FrameCuts.endsGroup(path: path, length: length, groupBytes: payload.pendingBytes) { try payload.cut() }
    }

    private func addDirectory(diskPath: [UInt8], storedPath: [UInt8], st: stat) throws {
        try addMetadataOnly(diskPath: diskPath, storedPath: storedPath, st: st)
        let names: [[UInt8]]
        do {
            names = try listDirectory(diskPath)
        } catch {
            let reason = (error as? FileError)?.errnoValue.map { String(cString: strerror($0)) } ?? "\(error)"
            warnings.append("\(EntryRecord.escaped(storedPath))/: contents skipped, cannot list: \(reason)")
            return
        }
        for name in names {
            try add(diskPath: diskPath + [0x2F] + name, storedPath: storedPath + [0x2F] + name, isRoot: false)
        }
    }

    /// The names in a directory as `readdir` gives them, sorted bytewise, without `.` and `..`.
    private func listDirectory(_ path: [UInt8]) throws -> [[UInt8]] {
        guard let dir = withBytesAsCString(path, { opendir($0) }) else {
            throw FileError.open(path: EntryRecord.escaped(path), errno: errno)
        }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw FileError.read(path: EntryRecord.escaped(path), errno: errno) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    private func addFile(diskPath: [UInt8], storedPath: [UInt8], st: stat) throws {
        let inodeKey = "\(st.st_dev):\(st.st_ino)"
        if st.st_nlink > 1, let first = firstPathOfInode[inodeKey] {
            try addMetadataOnly(diskPath: diskPath, storedPath: storedPath, st: st, hardlinkTo: first)
            return
        }
        if let parent, let r = parent.unchanged(path: storedPath, stat: st, type: .file, hardlinkTo: nil) {
            if Int64(st.st_size) >= FrameCuts.largeFile {
                try releaseHeld()
                if try reuseLarge(r) {
                    if st.st_nlink > 1 { firstPathOfInode[inodeKey] = storedPath }
                    return
                }
            } else {
                // The links after a hard-linked file point to it, held or not.
                if st.st_nlink > 1 { firstPathOfInode[inodeKey] = storedPath }
                if try offerSmall(Held(diskPath: diskPath, storedPath: storedPath, st: st, hardlinkTo: nil, record: r)) { return }
            }
        }
        try releaseHeld()
        try writeFile(diskPath: diskPath, storedPath: storedPath, st: st)
    }

    private func writeFile(diskPath: [UInt8], storedPath: [UInt8], st: stat) throws {
        currentPath = storedPath
        let inodeKey = "\(st.st_dev):\(st.st_ino)"
        // The display form of the name, for warnings only: built when one is needed (hot path).
        var shown: String { EntryRecord.escaped(storedPath) }
        let fd = withBytesAsCString(diskPath) { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        if fd < 0 {
            warnings.append("\(shown): skipped, cannot read: \(String(cString: strerror(errno)))")
            if firstPathOfInode[inodeKey] == storedPath { firstPathOfInode[inodeKey] = nil }
            return
        }
        defer { close(fd) }
        if st.st_nlink > 1 { firstPathOfInode[inodeKey] = storedPath }
        counters.filesRead += 1

        let large = Int64(st.st_size) >= FrameCuts.largeFile
        if large { try payload.cut() }
        let offset = tar.offset
        try payload.markBoundary()
        let (meta, warning) = try tar.writeHeader(diskPath: diskPath, storedPath: storedPath, stat: st, fd: fd, hardlinkTo: nil)
        if let warning { warnings.append("\(shown): \(warning)") }
        let hasher = SHA256Hasher()
        // The logical content, segment by segment: data is read at its offset, holes are zeros.
        var pieces: [(range: Range<Int64>, hole: Bool)] = []
        if let segments = meta.dataSegments {
            var position: Int64 = 0
            for segment in segments {
                if segment.lowerBound > position { pieces.append((position..<segment.lowerBound, true)) }
                pieces.append((segment, false))
                position = segment.upperBound
            }
            if position < meta.size { pieces.append((position..<meta.size, true)) }
        } else if meta.size > 0 {
            pieces = [(0..<meta.size, false)]
        }
        var zeroFilled: Int64 = 0  // data bytes stored as zeros: the file ended early or a read failed
        var failed = false
        var readError: Int32 = 0
        for (range, hole) in pieces {
            var position = range.lowerBound
            while position < range.upperBound {
                // A large file's frames end at fixed offsets of its content.
                let nextCut = (position / FrameCuts.piece + 1) * FrameCuts.piece
                let want = Int(min(Int64(buffer.count), range.upperBound - position, large ? nextCut - position : Int64.max))
                if hole || failed {
                    try zeros.withUnsafeBytes { try pass(UnsafeRawBufferPointer(rebasing: $0[0..<want]), to: hasher, stored: !hole) }
                    if !hole { zeroFilled += Int64(want) }
                    position += Int64(want)
                    if large && position % FrameCuts.piece == 0 { try payload.cut() }
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(position)) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    // The header promised `size` bytes: the rest is stored as zeros, and hashed
                    // too, so the entry digest matches what the tar holds.
                    if n < 0 { readError = errno }
                    failed = true
                    continue
                }
                counters.bytesRead += Int64(n)
                try buffer.withUnsafeBytes { try pass(UnsafeRawBufferPointer(rebasing: $0[0..<n]), to: hasher, stored: true) }
                position += Int64(n)
                if large && position % FrameCuts.piece == 0 { try payload.cut() }
            }
        }
        if failed {
            let reason = readError != 0 ? "read failed (\(String(cString: strerror(readError))))" : "file shrank while being read"
            warnings.append("\(shown): \(reason); the last \(zeroFilled) bytes are stored as zeros")
        } else {
            var after = stat()
            if fstat(fd, &after) == 0,
               after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec
                || after.st_mtim.tv_nsec != st.st_mtim.tv_nsec || after.st_ctim.tv_sec != st.st_ctim.tv_sec
                || after.st_ctim.tv_nsec != st.st_ctim.tv_nsec {
                warnings.append("\(shown): changed while being read; the stored copy may be inconsistent")
            }
        }
        try tar.finishEntry()
        try record(storedPath, meta, digest: hasher.finalize(), offset: offset, st: st)
        if large { try payload.cut() } else { try endOfSmallEntry(storedPath, length: tar.offset - offset) }
    }

    /// Hashes `chunk` of a file's logical content and passes it to the tar writer. Progress
    /// counts `stored` bytes only (not holes), as the snapshot's size does.
    private func pass(_ chunk: UnsafeRawBufferPointer, to hasher: SHA256Hasher, stored: Bool) throws {
        hasher.update(chunk)
        try tar.writeData(chunk)
        guard stored else { return }
        bytesIn += Int64(chunk.count)
        if bytesIn - lastProgress >= 1 << 20, let progress {
            lastProgress = bytesIn
            progress(BackupProgress(bytesIn: bytesIn, entries: entryCount, current: EntryRecord.escaped(currentPath)))
        }
    }

    private func record(_ path: [UInt8], _ meta: EntryMetadata, digest: SHA256Digest?, offset: Int64, st: stat) throws {
        var record = EntryRecord(
            rawPath: path, type: meta.type, mode: meta.mode, uid: meta.uid, gid: meta.gid, modificationTime: meta.mtime,
            size: meta.size, sha256: digest, rawLinkTarget: meta.linkTarget, offset: offset, length: tar.offset - offset)
        record.inode = UInt64(st.st_ino)
        record.device = UInt64(st.st_dev)
        record.changeTime = FileTime(st.st_ctim)
        try write(record)
    }

    private func write(_ record: EntryRecord) throws {
        try entries.write(Array(try encoder.encode(record)) + [0x0A])
        entryCount += 1
    }

    /// A reused entry: the parent's line, with its new offset.
    private func write(_ cached: CachedEntry, at offset: Int64) throws {
        try entries.write(try cached.line(at: offset, encoder: encoder) + [0x0A])
        entryCount += 1
    }

    func finish() throws {
        try releaseHeld()
        try payload.cut()
        try tar.close()
        progress?(BackupProgress(bytesIn: bytesIn, entries: entryCount))
    }
}
