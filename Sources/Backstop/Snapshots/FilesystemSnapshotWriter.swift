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
public struct FilesystemSnapshotWriter {
    public var paths: [String]
    public var excludes: [String]
    public var options: BackupOptions
    public var progress: ((BackupProgress) -> Void)?

    public init(paths: [String], excludes: [String] = [], options: BackupOptions, progress: ((BackupProgress) -> Void)? = nil) {
        self.paths = paths
        self.excludes = excludes
        self.options = options
        self.progress = progress
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
        return try repository.writeSnapshot(kind: .filesystem, options: options) { payload, entries in
            let walker = try TreeWalker(payload: payload, entries: entries!, excludes: excludes, progress: progress)
            for root in roots.sorted(by: { $0.name < $1.name }) {
                try walker.add(diskPath: root.disk, storedPath: root.name, isRoot: true)
            }
            try walker.finish()
            return SnapshotBody(entryCount: walker.entryCount, warnings: walker.warnings, paths: roots.map(\.disk))
        }
    }
}

/// The recursive walk behind `FilesystemSnapshotWriter`.
private final class TreeWalker {
    let tar: TarWriter
    let payload: ByteSink
    let entries: ByteSink
    let excludes: [String]
    let progress: ((BackupProgress) -> Void)?
    let encoder = Timestamp.jsonEncoder(pretty: false)
    var warnings: [String] = []
    var entryCount = 0
    var bytesIn: Int64 = 0
    var lastProgress: Int64 = 0
    var firstPathOfInode: [String: String] = [:]
    var buffer = [UInt8](repeating: 0, count: 1 << 20)

    init(payload: ByteSink, entries: ByteSink, excludes: [String], progress: ((BackupProgress) -> Void)?) throws {
        self.payload = payload
        self.entries = entries
        self.excludes = excludes
        self.progress = progress
        tar = try TarWriter(sink: payload)
    }

    func isExcluded(_ storedPath: String) -> Bool {
        let base = (storedPath as NSString).lastPathComponent
        return excludes.contains { pattern in
            fnmatch(pattern, storedPath, 0) == 0 || (!pattern.contains("/") && fnmatch(pattern, base, 0) == 0)
        }
    }

    func add(diskPath: String, storedPath: String, isRoot: Bool) throws {
        if !isRoot && isExcluded(storedPath) { return }
        var st = stat()
        let statResult = isRoot ? stat(diskPath, &st) : lstat(diskPath, &st)
        if statResult != 0 {
            warnings.append("\(storedPath): skipped, cannot stat: \(String(cString: strerror(errno)))")
            return
        }
        let type = st.st_mode & S_IFMT
        switch type {
        case S_IFSOCK:
            warnings.append("\(storedPath): skipped, sockets cannot be stored in tar")
        case S_IFREG:
            try addFile(diskPath: diskPath, storedPath: storedPath, st: st)
        case S_IFDIR:
            try addDirectory(diskPath: diskPath, storedPath: storedPath, st: st)
        default:
            try addMetadataOnly(diskPath: diskPath, storedPath: storedPath, st: st)
        }
    }

    /// An entry without data: a directory, symlink, device, fifo, or a hard link to `hardlinkTo`.
    private func addMetadataOnly(diskPath: String, storedPath: String, st: stat, hardlinkTo: String? = nil) throws {
        let offset = tar.offset
        try payload.markBoundary()
        let (meta, warning) = try tar.writeHeader(diskPath: diskPath, storedPath: storedPath, stat: st, fd: -1, hardlinkTo: hardlinkTo)
        if let warning { warnings.append("\(storedPath): \(warning)") }
        try tar.finishEntry()
        try record(storedPath, meta, digest: nil, offset: offset)
    }

    private func addDirectory(diskPath: String, storedPath: String, st: stat) throws {
        try addMetadataOnly(diskPath: diskPath, storedPath: storedPath, st: st)
        let names: [String]
        do {
            names = try FileSystem.list(diskPath)
        } catch {
            warnings.append("\(storedPath)/: contents skipped, cannot list: \(error)")
            return
        }
        for name in names {
            try add(diskPath: diskPath + "/" + name, storedPath: storedPath + "/" + name, isRoot: false)
        }
    }

    private func addFile(diskPath: String, storedPath: String, st: stat) throws {
        let inodeKey = "\(st.st_dev):\(st.st_ino)"
        if st.st_nlink > 1, let first = firstPathOfInode[inodeKey] {
            try addMetadataOnly(diskPath: diskPath, storedPath: storedPath, st: st, hardlinkTo: first)
            return
        }
        let fd = open(diskPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            warnings.append("\(storedPath): skipped, cannot read: \(String(cString: strerror(errno)))")
            return
        }
        defer { close(fd) }
        if st.st_nlink > 1 { firstPathOfInode[inodeKey] = storedPath }

        let offset = tar.offset
        try payload.markBoundary()
        let (meta, warning) = try tar.writeHeader(diskPath: diskPath, storedPath: storedPath, stat: st, fd: fd, hardlinkTo: nil)
        if let warning { warnings.append("\(storedPath): \(warning)") }
        let hasher = SHA256Hasher()
        var remaining = meta.size
        var readError: Int32 = 0
        while remaining > 0 {
            let want = Int(min(Int64(buffer.count), remaining))
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
            if n < 0 {
                if errno == EINTR { continue }
                readError = errno
                break
            }
            if n == 0 { break }
            try buffer.withUnsafeBytes { raw in
                let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                hasher.update(chunk)
                try tar.writeData(chunk)
            }
            remaining -= Int64(n)
            bytesIn += Int64(n)
            if bytesIn - lastProgress >= 1 << 20, let progress {
                lastProgress = bytesIn
                progress(BackupProgress(bytesIn: bytesIn, entries: entryCount))
            }
        }
        if remaining > 0 {
            // The tar header promised `size` bytes: pad with zeros so the archive stays valid,
            // and hash the padding too, so the entry digest matches what the tar holds.
            let reason = readError != 0 ? "read failed (\(String(cString: strerror(readError))))" : "file shrank while being read"
            warnings.append("\(storedPath): \(reason); the last \(remaining) bytes are stored as zeros")
            let zeros = [UInt8](repeating: 0, count: 1 << 16)
            while remaining > 0 {
                let n = Int(min(Int64(zeros.count), remaining))
                try zeros.withUnsafeBytes { raw in
                    let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                    hasher.update(chunk)
                    try tar.writeData(chunk)
                }
                remaining -= Int64(n)
            }
        } else {
            var after = stat()
            if fstat(fd, &after) == 0,
               after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec
                || after.st_mtim.tv_nsec != st.st_mtim.tv_nsec || after.st_ctim.tv_sec != st.st_ctim.tv_sec
                || after.st_ctim.tv_nsec != st.st_ctim.tv_nsec {
                warnings.append("\(storedPath): changed while being read; the stored copy may be inconsistent")
            }
        }
        try tar.finishEntry()
        try record(storedPath, meta, digest: hasher.finalize(), offset: offset)
    }

    private func record(_ path: String, _ meta: EntryMetadata, digest: SHA256Digest?, offset: Int64) throws {
        let record = EntryRecord(
            path: path, type: meta.type, mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: meta.mtime,
            size: meta.size, sha256: digest, linkTarget: meta.linkTarget, offset: offset, length: tar.offset - offset)
        try entries.write(Array(try encoder.encode(record)) + [0x0A])
        entryCount += 1
    }

    func finish() throws {
        try tar.close()
        progress?(BackupProgress(bytesIn: bytesIn, entries: entryCount))
    }
}
