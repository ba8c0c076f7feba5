import Foundation

/// Where a tar stream comes from: a descriptor (standard input) or a command's standard output.
public enum TarStreamInput: Sendable {
    case fileDescriptor(Int32)
    case command(String)
}

/// Takes a filesystem snapshot of a tar stream (`backup --tar-stdin`, `--tar-command CMD`, e.g.
/// `pg_basebackup -D - -Ft -X none`): each entry is read with libarchive and written again into
/// the snapshot's own pax stream, with the same entry list and frame cuts as a directory backup,
/// so restore, single-file restore, verify, diff and export work unchanged. Entries are stored
/// under their own names (a leading `./` dropped), so a restore to DIR puts them into DIR.
///
/// Memory stays bounded: content streams through in 1 MiB pieces; only the names seen so far
/// (for the checks below) and a `backup_manifest` of up to 64 MiB are kept.
///
/// The stream is untrusted. An absolute path, a `..` component, a path seen before, a path below
/// a symlink or a non-directory, a hard link to anything but a regular file stored before it, a
/// symlink whose target is absolute or leaves the tree, or a device file is refused
/// (`BackupError.unsafeTarEntry`, 65) naming the entry, and nothing is committed. A command that
/// exits non-zero is `commandFailed` (1), with its stderr's tail; nothing is committed.
///
/// When the stream holds `backup_label` (pg_basebackup), its positions go into the manifest
/// (`postgresBackup`), with the stop LSN from `backup_manifest`'s `WAL-Ranges` when present.
public struct TarStreamSnapshotWriter {
    public var input: TarStreamInput
    public var options: BackupOptions
    public var progress: ((BackupProgress) -> Void)?

    public init(input: TarStreamInput, options: BackupOptions, progress: ((BackupProgress) -> Void)? = nil) {
        self.input = input
        self.options = options
        self.progress = progress
    }

    /// Writes and commits the snapshot. The caller holds the repository's writer lock.
    public func write(to repository: Repository) throws -> Manifest {
        switch input {
        case let .fileDescriptor(fd):
            return try repository.writeSnapshot(kind: .filesystem, options: options) { payload, entries in
                let source = PipeSource(fd: fd, description: "standard input")
                return try copy(from: source, payload: payload, entries: entries!)
            }
        case let .command(command):
            let child = try ShellCommand(command, stdout: .pipe)
            let source = PipeSource(fd: child.stdout!, description: "the output of `\(command)`")
            do {
                return try repository.writeSnapshot(kind: .filesystem, options: options) { payload, entries in
                    let body: SnapshotBody
                    do {
                        body = try copy(from: source, payload: payload, entries: entries!)
                    } catch {
                        // The stream ended early or was refused: a failing command explains a
                        // truncated stream better. Mid-stream, the command is stopped instead.
                        if source.reachedEnd { try child.waitForSuccess() }
                        throw error
                    }
                    try source.drain()
                    try child.waitForSuccess()
                    return body
                }
            } catch {
                child.terminate()
                throw error
            }
        }
    }

    private func copy(from source: PipeSource, payload: FrameWriter, entries: ByteSink) throws -> SnapshotBody {
        let copier = try TarStreamCopier(payload: payload, entries: entries, progress: progress)
        do {
            let reader = try TarReader(next: { try source.next() })
            while let entry = try reader.nextEntry() {
                try copier.add(entry, reader: reader)
            }
            // libarchive ends quietly when the stream stops at an entry boundary without the
            // end-of-archive blocks (`tar -t` too): a cut stream. Those blocks start where the
            // next header would, and libarchive read past there only if they are present.
            let end = reader.headerPosition
            if source.bytesRead > 0 && source.bytesRead <= end {
                throw BackupError.damagedTarStream(description: source.description,
                                                   reason: "it ends after \(end) bytes, at an entry boundary, without tar's end-of-archive blocks: it was cut short")
            }
        } catch let error as ArchiveError {
            if source.bytesRead == 0 { throw BackupError.emptyStream(source.description) }
            throw BackupError.damagedTarStream(description: source.description, reason: "\(error)")
        }
        if source.bytesRead == 0 { throw BackupError.emptyStream(source.description) }
        try copier.finish()
        var backup = copier.label.flatMap { PostgresBaseBackup.parse(label: String(decoding: $0, as: UTF8.self)) }
        if backup != nil, let manifest = copier.backupManifest { backup!.stopLSN = PostgresBaseBackup.stopLSN(manifest: manifest) }
        return SnapshotBody(entryCount: copier.entryCount, warnings: copier.warnings, paths: [],
                            postgresBackup: backup)
    }
}

/// Reads a descriptor in 1 MiB chunks for the tar reader.
private final class PipeSource {
    let fd: Int32
    let description: String
    var reachedEnd = false
    var bytesRead: Int64 = 0

    init(fd: Int32, description: String) {
        self.fd = fd
        self.description = description
    }

    private var buffer = [UInt8](repeating: 0, count: 1 << 20)

    func next() throws -> [UInt8]? {
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw BackupError.input("\(description): \(String(cString: strerror(errno)))") }
            if n == 0 { reachedEnd = true; return nil }
            bytesRead += Int64(n)
            return Array(buffer[0..<n])
        }
    }

    /// Reads what follows the end-of-archive blocks (tar pads to its block size), so the writer
    /// never blocks on a full pipe.
    func drain() throws {
        while !reachedEnd { _ = try next() }
    }
}

/// Copies entries of an untrusted tar stream into the snapshot's pax stream, checking each.
private final class TarStreamCopier {
    let tar: TarWriter
    let payload: FrameWriter
    let entries: ByteSink
    let progress: ((BackupProgress) -> Void)?
    let encoder = Timestamp.jsonEncoder(pretty: false)
    var warnings: [String] = []
    var entryCount = 0
    var bytesIn: Int64 = 0
    var lastProgress: Int64 = 0
    /// The type of every path stored so far: duplicates, links and parents are checked with it.
    var stored: [[UInt8]: EntryType] = [:]
    /// `backup_label` and `backup_manifest` at the top of the stream, when present.
    var label: [UInt8]?
    var backupManifest: [UInt8]?
    static let manifestLimit = 64 << 20

    init(payload: FrameWriter, entries: ByteSink, progress: ((BackupProgress) -> Void)?) throws {
        self.payload = payload
        self.entries = entries
        self.progress = progress
        tar = try TarWriter(sink: payload)
    }

    /// A name's components without empty and `.` ones; nil when one is `..`.
    static func components(_ path: [UInt8]) -> [[UInt8]]? {
        var out: [[UInt8]] = []
        for c in path.split(separator: 0x2F, omittingEmptySubsequences: true) {
            if c.elementsEqual([0x2E]) { continue }
            if c.elementsEqual([0x2E, 0x2E]) { return nil }
            out.append(Array(c))
        }
        return out
    }

    static func join(_ components: [[UInt8]]) -> [UInt8] {
        Array(components.joined(separator: [0x2F]))
    }

    func refuse(_ raw: [UInt8], _ reason: String) -> BackupError {
        .unsafeTarEntry(entry: EntryRecord.escaped(raw), reason: reason)
    }

    /// The checked name an entry is stored under, or nil for the stream's root (`.` or `./`).
    func storedPath(_ entry: TarEntry) throws -> [UInt8]? {
        let raw = entry.rawPath
        if raw.first == 0x2F { throw refuse(raw, "its path is absolute") }
        guard let parts = Self.components(raw) else { throw refuse(raw, "its path has a `..` component") }
        if parts.isEmpty {
            guard entry.type == .directory else { throw refuse(raw, "it names the root of the tree but is not a directory") }
            return nil
        }
        let path = Self.join(parts)
        if stored[path] != nil { throw refuse(raw, "its path appears twice in the stream") }
        for i in 1..<max(parts.count, 1) {
            let prefix = Self.join(Array(parts[0..<i]))
            if let type = stored[prefix], type != .directory {
                throw refuse(raw, "it lies below \(EntryRecord.escaped(prefix)), a \(type.rawValue), not a directory")
            }
        }
        return path
    }

    func add(_ entry: TarEntry, reader: TarReader) throws {
        guard let path = try storedPath(entry) else { return }
        let raw = entry.rawPath
        var linkTarget: [UInt8]?
        switch entry.type {
        case .characterDevice, .blockDevice:
            throw refuse(raw, "it is a device file (\(entry.type.rawValue))")
        case .hardlink:
            guard let target = entry.rawLinkTarget, target.first != 0x2F, let parts = Self.components(target), !parts.isEmpty else {
                throw refuse(raw, "it is a hard link to \(entry.rawLinkTarget.map(EntryRecord.escaped) ?? "nothing"), outside the tree")
            }
            let t = Self.join(parts)
            guard stored[t] == .file else {
                throw refuse(raw, "it is a hard link to \(EntryRecord.escaped(target)), which is not a regular file stored before it")
            }
            linkTarget = t
        case .symlink:
            guard let target = entry.rawLinkTarget, !target.isEmpty else { throw refuse(raw, "it is a symlink without a target") }
            if target.first == 0x2F { throw refuse(raw, "it is a symlink to the absolute path \(EntryRecord.escaped(target)), outside the tree") }
            // Only leading `..`s, no more than the link's depth: they climb from the link's real
            // directory (entries below symlinks are refused), and every name after them is an
            // entry of the tree or a symlink checked the same way, so no chain leaves the tree.
            // (`l -> .` and `s -> l/..` would: a `..` after a name is refused.)
            var depth = path.split(separator: 0x2F).count - 1
            var named = false
            for c in target.split(separator: 0x2F, omittingEmptySubsequences: true) {
                if c.elementsEqual([0x2E]) { continue }
                if c.elementsEqual([0x2E, 0x2E]) {
                    if named { throw refuse(raw, "it is a symlink to \(EntryRecord.escaped(target)), with `..` after a name, which can leave the tree through another symlink") }
                    depth -= 1
                    if depth < 0 { throw refuse(raw, "it is a symlink to \(EntryRecord.escaped(target)), which leaves the tree") }
                } else {
                    named = true
                }
            }
            linkTarget = target
        default:
            break
        }
        stored[path] = entry.type

        let large = entry.type == .file && entry.size >= FrameCuts.largeFile
        if large { try payload.cut() }
        let offset = tar.offset
        try payload.markBoundary()
        let (meta, warning) = try tar.writeHeader(copying: entry, storedPath: path, linkTarget: linkTarget)
        if let warning { warnings.append("\(EntryRecord.escaped(path)): \(warning)") }
        var digest: SHA256Digest?
        if entry.type == .file {
            let keep: Int? = path == Array("backup_label".utf8) ? 1 << 20
                : path == Array("backup_manifest".utf8) ? Self.manifestLimit : nil
            var kept: [UInt8] = []
            var overflow = false
            let hasher = SHA256Hasher()
            var position: Int64 = 0
            try reader.readData { chunk in
                var rest = chunk
                while !rest.isEmpty {
                    var n = rest.count
                    if large {
                        let nextCut = (position / FrameCuts.piece + 1) * FrameCuts.piece
                        n = Int(min(Int64(n), nextCut - position))
                    }
                    let piece = UnsafeRawBufferPointer(rebasing: rest[0..<n])
                    guard position + Int64(n) <= entry.size else {
                        throw ArchiveError.failed(operation: "read data", path: EntryRecord.escaped(raw), reason: "more data than the header's size")
                    }
                    hasher.update(piece)
                    try tar.writeData(piece)
                    if let keep, !overflow {
                        if kept.count + n <= keep { kept.append(contentsOf: piece) } else { overflow = true; kept = [] }
                    }
                    position += Int64(n)
                    bytesIn += Int64(n)
                    if large && position % FrameCuts.piece == 0 { try payload.cut() }
                    rest = UnsafeRawBufferPointer(rebasing: rest[n...])
                }
                if bytesIn - lastProgress >= 1 << 20, let progress {
                    lastProgress = bytesIn
                    progress(BackupProgress(bytesIn: bytesIn, entries: entryCount, current: EntryRecord.escaped(path)))
                }
            }
            if position != entry.size {
                throw ArchiveError.failed(operation: "read data", path: EntryRecord.escaped(raw), reason: "the stream ends inside the entry (\(position) of \(entry.size) bytes)")
            }
            digest = hasher.finalize()
            if keep != nil && !overflow {
                if path == Array("backup_label".utf8) { label = kept } else { backupManifest = kept }
            }
        }
        try tar.finishEntry()
        let record = EntryRecord(
            rawPath: path, type: meta.type, mode: meta.mode, uid: meta.uid, gid: meta.gid, modificationTime: meta.mtime,
            size: meta.size, sha256: digest, rawLinkTarget: meta.linkTarget, offset: offset, length: tar.offset - offset)
        try entries.write(Array(try encoder.encode(record)) + [0x0A])
        entryCount += 1
        if large {
            try payload.cut()
        } else if FrameCuts.endsGroup(path: path, length: tar.offset - offset, groupBytes: payload.pendingBytes) {
            try payload.cut()
        }
    }

    func finish() throws {
        try payload.cut()
        try tar.close()
        progress?(BackupProgress(bytesIn: bytesIn, entries: entryCount))
    }
}
