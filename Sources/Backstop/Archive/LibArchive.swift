import CArchive
import Foundation

/// Errors from libarchive, with the path or entry they concern.
public enum ArchiveError: Error, CustomStringConvertible {
    case failed(operation: String, path: String?, reason: String)

    public var description: String {
        switch self {
        case let .failed(operation, path, reason):
            return "libarchive \(operation)\(path.map { " of \($0)" } ?? "") failed: \(reason)"
        }
    }
}

/// Checks a libarchive status; every libarchive call that returns one goes through here.
/// Warnings (`ARCHIVE_WARN`) are returned so the caller can record them.
@discardableResult
private func archiveCheck(_ status: Int32, _ archive: OpaquePointer, _ operation: String, path: String? = nil) throws -> String? {
    if status == ARCHIVE_OK || status == ARCHIVE_EOF { return nil }
    let reason = archive_error_string(archive).map { String(cString: $0) } ?? "status \(status)"
    if status == ARCHIVE_WARN { return reason }
    throw ArchiveError.failed(operation: operation, path: path, reason: reason)
}

/// A C.UTF-8 character-type locale for libarchive's name conversions. Names are UTF-8 in pax
/// headers; under the C locale libarchive would refuse every non-ASCII name. Used per thread
/// (`uselocale`), so the process locale is left alone.
nonisolated(unsafe) private let utf8Locale: locale_t? = newlocale(Int32(1 << LC_CTYPE), "C.UTF-8", nil)

/// Runs `body` with UTF-8 as this thread's character set. A name that is not valid UTF-8 is
/// still stored, as bytes (pax `hdrcharset=BINARY`).
private func withUTF8Names<T>(_ body: () throws -> T) rethrows -> T {
    guard let locale = utf8Locale else { return try body() }
    let previous = uselocale(locale)
    defer { uselocale(previous) }
    return try body()
}

/// The type of a tar entry, as Backstop names it in entry lists.
public enum EntryType: String, Codable, Sendable {
    case file, directory, symlink, hardlink, fifo, characterDevice, blockDevice
}

/// An entry's metadata as libarchive read it from disk and wrote it to the tar header.
public struct EntryMetadata: Sendable {
    public var type: EntryType
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    /// The mtime with its nanoseconds, as written to the pax header.
    public var mtime: FileTime
    /// The logical size (for a sparse file, holes included).
    public var size: Int64
    /// The symlink target or the hard link's stored path, as exact bytes.
    public var linkTarget: [UInt8]?
    /// For a sparse file, its data segments in order (the rest are holes, stored as a GNU sparse
    /// 1.0 map); nil for a file stored whole.
    public var dataSegments: [Range<Int64>]?
}

/// Calls `body` with `bytes` as a NUL-terminated C string, byte for byte (never re-encoded).
private func withBytesAsCString<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
    try (bytes + [0]).withUnsafeBufferPointer { buffer in
        try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
    }
}

/// `lseek` whences for holes; Glibc exports them only under `_GNU_SOURCE`.
#if os(Linux)
private let seekData: Int32 = 3, seekHole: Int32 = 4
#else
private let seekData: Int32 = SEEK_DATA, seekHole: Int32 = SEEK_HOLE
#endif

/// The bytes of a C string, exactly.
private func cStringBytes(_ cString: UnsafePointer<CChar>) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: cString, count: strlen(cString)))
}

/// Writes a pax tar stream to a `ByteSink`, unblocked, so the sink sees each byte as it is
/// produced and `offset` is the exact position of the next header.
///
/// Headers and metadata (owners, modes, mtimes, xattrs, ACLs) come from libarchive's disk reader.
/// The stream depends only on what a backup must keep, so an unchanged tree gives the same bytes:
/// names are written as their exact bytes (a name that is not UTF-8 gets a pax header with
/// `hdrcharset=BINARY`); the mtime keeps its nanoseconds (a pax `mtime` record whenever they are
/// not zero, as GNU tar writes it); atime, ctime and birth time are never written (full pax
/// would, and they change when a file is merely read or chmod'ed back); holes of sparse files are
/// found with `SEEK_DATA`/`SEEK_HOLE` and stored as a GNU sparse 1.0 map, with only the data
/// segments in the stream.
final class TarWriter {
    private let archive: OpaquePointer
    private let disk: OpaquePointer
    private let sink: ByteSink
    private var sinkError: Error?
    private(set) var offset: Int64 = 0
    private var closed = false

    init(sink: ByteSink) throws {
        guard let a = archive_write_new(), let d = archive_read_disk_new() else {
            fatalError("libarchive: out of memory")
        }
        archive = a
        disk = d
        self.sink = sink
        // Full pax, not pax_restricted: restricted writes sub-second mtimes only for entries that
        // need a pax header for another reason (xattrs, long names).
        try archiveCheck(archive_write_set_format_pax(a), a, "set pax format")
        try archiveCheck(archive_write_add_filter_none(a), a, "set filter")
        try archiveCheck(archive_write_set_bytes_per_block(a, 0), a, "set block size")
        try archiveCheck(archive_write_set_bytes_in_last_block(a, 1), a, "set last block size")
        try archiveCheck(archive_read_disk_set_standard_lookup(d), d, "set owner lookup")
        // Holes are found here, on the descriptor being read (`sparseSegments`), not by the disk
        // reader, which would reopen hard links by path to look for them.
        try archiveCheck(archive_read_disk_set_behavior(d, ARCHIVE_READDISK_NO_SPARSE), d, "set disk reader behaviour")
        let opened = archive_write_open(a, Unmanaged.passUnretained(self).toOpaque(), nil, { archive, client, buffer, length in
            let me = Unmanaged<TarWriter>.fromOpaque(client!).takeUnretainedValue()
            do {
                try me.sink.write(UnsafeRawBufferPointer(start: buffer, count: length))
                me.offset += Int64(length)
                return la_ssize_t(length)
            } catch {
                me.sinkError = error
                backstop_archive_set_error(archive, EIO, "write to the snapshot pipeline failed")
                return -1
            }
        }, nil)
        try check(opened, "open")
    }

    deinit {
        archive_write_free(archive)
        archive_free(disk)
    }

    /// Writes the header of the file at `diskPath` (already `lstat`ed as `st`), named `storedPath`;
    /// both are exact bytes. `fd` is the open file for regular files (or -1). A `hardlinkTo` path
    /// makes it a hard link entry with no data. Returns the metadata written and any libarchive
    /// warning.
    ///
    /// For a regular file, the caller then passes its logical content to `writeData`, holes
    /// included (as zeros, which are not stored): `dataSegments` says where the data is.
    func writeHeader(diskPath: [UInt8], storedPath: [UInt8], stat st: stat, fd: Int32, hardlinkTo: [UInt8]?) throws -> (EntryMetadata, String?) {
        try withUTF8Names { try writeHeaderInUTF8(diskPath: diskPath, storedPath: storedPath, stat: st, fd: fd, hardlinkTo: hardlinkTo) }
    }

    private func writeHeaderInUTF8(diskPath: [UInt8], storedPath: [UInt8], stat st: stat, fd: Int32, hardlinkTo: [UInt8]?) throws -> (EntryMetadata, String?) {
        guard let entry = archive_entry_new() else { fatalError("libarchive: out of memory") }
        defer { archive_entry_free(entry) }
        let shownPath = EntryRecord.escaped(storedPath)
        withBytesAsCString(diskPath) { archive_entry_copy_sourcepath(entry, $0) }
        withBytesAsCString(storedPath) { archive_entry_copy_pathname(entry, $0) }
        var st = st
        var warning = try archiveCheck(archive_read_disk_entry_from_file(disk, entry, fd, &st), disk, "read metadata", path: shownPath)
        withBytesAsCString(storedPath) { archive_entry_copy_pathname(entry, $0) }
        // Only what a restore needs enters the stream: not atime, ctime or birth time.
        archive_entry_unset_atime(entry)
        archive_entry_unset_ctime(entry)
        archive_entry_unset_birthtime(entry)
        archive_entry_sparse_clear(entry)
        var segments: [Range<Int64>]?
        if let hardlinkTo {
            withBytesAsCString(hardlinkTo) { archive_entry_copy_hardlink(entry, $0) }
            archive_entry_set_size(entry, 0)
        } else if fd >= 0, (st.st_mode & S_IFMT) == S_IFREG, let found = sparseSegments(fd: fd, stat: st) {
            segments = found
            for segment in found { archive_entry_sparse_add_entry(entry, segment.lowerBound, Int64(segment.count)) }
            // A file that is all hole: one empty data segment marks it sparse.
            if found.isEmpty { archive_entry_sparse_add_entry(entry, 0, 0) }
        }
        let linkTarget = hardlinkTo ?? archive_entry_symlink(entry).map(cStringBytes)
        if let w = try check(archive_write_header(archive, entry), "write header", path: shownPath) {
            // A name that is not UTF-8 is stored as its bytes (`hdrcharset=BINARY`), by design,
            // so libarchive's "Can't translate pathname (or linkname) to UTF-8" is no warning.
            let binaryNames = !EntryRecord.isValidUTF8(storedPath) || !(linkTarget.map(EntryRecord.isValidUTF8) ?? true)
            let expected = binaryNames && (w.hasPrefix("Can't translate pathname") || w.hasPrefix("Can't translate linkname"))
            if !expected { warning = w }
        }

        let filetype = archive_entry_filetype(entry)
        let type: EntryType
        if hardlinkTo != nil { type = .hardlink } else {
            switch UInt32(filetype) {
            case backstop_ae_ifreg(): type = .file
            case backstop_ae_ifdir(): type = .directory
            case backstop_ae_iflnk(): type = .symlink
            default:
                switch st.st_mode & S_IFMT {
                case S_IFIFO: type = .fifo
                case S_IFCHR: type = .characterDevice
                case S_IFBLK: type = .blockDevice
                default: type = .file
                }
            }
        }
        let meta = EntryMetadata(
            type: type,
            mode: UInt32(archive_entry_mode(entry)) & 0o7777,
            uid: archive_entry_uid(entry), gid: archive_entry_gid(entry),
            mtime: FileTime(seconds: Int64(archive_entry_mtime(entry)), nanoseconds: Int32(archive_entry_mtime_nsec(entry))),
            size: archive_entry_size(entry),
            linkTarget: linkTarget,
            dataSegments: segments)
        return (meta, warning)
    }

    /// The data segments of a file with holes (`SEEK_DATA`/`SEEK_HOLE` on `fd`, within the size
    /// `st` gave), or nil when it has none or the filesystem cannot say. Only files with fewer
    /// blocks than their size can have holes, so others cost no system call.
    private func sparseSegments(fd: Int32, stat st: stat) -> [Range<Int64>]? {
        let size = Int64(st.st_size)
        guard size > 0, Int64(st.st_blocks) * 512 < size else { return nil }
        defer { lseek(fd, 0, SEEK_SET) }
        var segments: [Range<Int64>] = []
        var position: Int64 = 0
        while position < size {
            let data = Int64(lseek(fd, off_t(position), seekData))
            if data < 0 {
                if errno == ENXIO { break }  // only a hole from here to the end
                return nil
            }
            if data >= size { break }
            let hole = Int64(lseek(fd, off_t(data), seekHole))
            if hole < 0 { return nil }
            let end = min(max(hole, data), size)
            if end > data { segments.append(data..<end) }
            position = max(end, data + 1)
        }
        if segments == [0..<size] { return nil }
        return segments
    }

    /// Writes the next bytes of the current entry's logical content (holes included, as zeros).
    func writeData(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = archive_write_data(archive, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                // Never counted as progress, even when libarchive calls it a warning.
                let reason = try check(Int32(n), "write data")
                throw ArchiveError.failed(operation: "write data", path: nil, reason: reason ?? "status \(n)")
            }
            precondition(n > 0, "more data written than the entry's header declared")
            done += n
        }
    }

    /// Ends the current entry: its padding is written, so `offset` is the next header's.
    func finishEntry() throws {
        try check(archive_write_finish_entry(archive), "finish entry")
    }

    /// Writes the end-of-archive marker. Does not finish the sink.
    func close() throws {
        precondition(!closed)
        closed = true
        try check(archive_write_close(archive), "close")
    }

    @discardableResult
    private func check(_ status: Int32, _ operation: String, path: String? = nil) throws -> String? {
        if let sinkError, status != ARCHIVE_OK { throw sinkError }
        return try archiveCheck(status, archive, operation, path: path)
    }
}

/// An entry header read from a tar stream. Valid until the reader moves to the next entry.
struct TarEntry {
    fileprivate let pointer: OpaquePointer
    let path: String
    let type: EntryType
    let size: Int64
    let mode: UInt32
    /// The symlink target (symlinks) or the linked path (hard links).
    let linkTarget: String?
}

/// Reads a tar stream pulled chunk by chunk from `next` (nil at the end), with libarchive.
final class TarReader {
    private let archive: OpaquePointer
    private let next: () throws -> [UInt8]?
    private var current: [UInt8] = []
    private var sourceError: Error?

    init(next: @escaping () throws -> [UInt8]?) throws {
        guard let a = archive_read_new() else { fatalError("libarchive: out of memory") }
        archive = a
        self.next = next
        try archiveCheck(archive_read_support_format_tar(a), a, "enable tar")
        try archiveCheck(archive_read_support_filter_none(a), a, "enable filter")
        let status = archive_read_open(a, Unmanaged.passUnretained(self).toOpaque(), nil, { archive, client, buffer in
            let me = Unmanaged<TarReader>.fromOpaque(client!).takeUnretainedValue()
            do {
                guard let chunk = try me.next() else { return 0 }
                me.current = chunk
                return me.current.withUnsafeBytes { raw in
                    buffer!.pointee = raw.baseAddress
                    return la_ssize_t(raw.count)
                }
            } catch {
                me.sourceError = error
                backstop_archive_set_error(archive, EIO, "reading the snapshot stream failed")
                return -1
            }
        }, nil)
        try check(status, "open")
    }

    deinit { archive_read_free(archive) }

    /// The next entry, or nil at the end of the archive.
    func nextEntry() throws -> TarEntry? {
        try withUTF8Names { try nextEntryInUTF8() }
    }

    private func nextEntryInUTF8() throws -> TarEntry? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(archive, &entry)
        if status == ARCHIVE_EOF { return nil }
        try check(status, "read header")
        guard let e = entry else { return nil }
        currentIsSparse = archive_entry_sparse_count(e) > 0
        let hardlink = archive_entry_hardlink(e).map { String(cString: $0) }
        let symlink = archive_entry_symlink(e).map { String(cString: $0) }
        let type: EntryType
        if hardlink != nil { type = .hardlink } else {
            switch UInt32(archive_entry_filetype(e)) {
            case backstop_ae_ifreg(): type = .file
            case backstop_ae_ifdir(): type = .directory
            case backstop_ae_iflnk(): type = .symlink
            default:
                switch mode_t(archive_entry_filetype(e)) {
                case S_IFIFO: type = .fifo
                case S_IFCHR: type = .characterDevice
                case S_IFBLK: type = .blockDevice
                default: type = .file
                }
            }
        }
        var path = archive_entry_pathname(e).map { String(cString: $0) } ?? ""
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }  // tar writes directories as "name/"
        return TarEntry(pointer: e, path: path, type: type, size: archive_entry_size(e),
                        mode: UInt32(archive_entry_mode(e)) & 0o7777, linkTarget: hardlink ?? symlink)
    }

    /// Where the current entry's first header block starts in the stream.
    var headerPosition: Int64 { archive_read_header_position(archive) }

    /// Passes the current entry's data to `body`, block by block: its logical content, so the
    /// holes of a sparse entry (GNU sparse map) come as zeros and digests match the entry list.
    func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        var position: Int64 = 0
        while true {
            let status = archive_read_data_block(archive, &buffer, &size, &offset)
            if status != ARCHIVE_EOF { try check(status, "read data") }
            // At the end, `offset` is the entry's logical size: a trailing hole is filled too.
            while currentIsSparse && position < offset {
                let n = Int(min(offset - position, Int64(zeroBlock.count)))
                try zeroBlock.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                position += Int64(n)
            }
            if status == ARCHIVE_EOF { return }
            if size > 0 { try body(UnsafeRawBufferPointer(start: buffer, count: size)) }
            position += Int64(size)
        }
    }

    private let zeroBlock = [UInt8](repeating: 0, count: 1 << 16)
    /// Whether the current entry has a sparse map (only then are holes filled with zeros).
    private var currentIsSparse = false

    @discardableResult
    private func check(_ status: Int32, _ operation: String) throws -> String? {
        if let sourceError, status != ARCHIVE_OK { throw sourceError }
        return try archiveCheck(status, archive, operation)
    }
}

/// Writes entries to disk under `root`, a fresh private folder, never outside it.
///
/// Entry paths must be relative and free of `..` (the caller checks, and libarchive's
/// `SECURE_NODOTDOT` checks again). Writing through a symlink is refused by tracking every
/// symlink this writer creates: the folder starts empty and only this writer adds to it, so a
/// path can only pass through a symlink that is in that set. That replaces libarchive's
/// `SECURE_SYMLINKS`, which re-opens every component of every absolute path (six system calls a
/// file for a typical tree) and made restores of small-file trees three times slower than
/// `tar -x`. Paths are prefixed with `root` (resolved with `realpath`), so the working directory
/// of the process is never changed.
final class DiskWriter {
    private let archive: OpaquePointer
    private let root: String
    /// Relative paths of the symlinks written so far.
    private var symlinks = Set<String>()

    init(root: String, restoreOwners: Bool) throws {
        guard let resolved = realpath(root, nil) else { throw FileError.open(path: root, errno: errno) }
        self.root = String(cString: resolved)
        free(resolved)
        guard let a = archive_write_disk_new() else { fatalError("libarchive: out of memory") }
        archive = a
        var flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL
            | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_NO_OVERWRITE
        if restoreOwners { flags |= ARCHIVE_EXTRACT_OWNER }
        try archiveCheck(archive_write_disk_set_options(a, flags), a, "set extract options")
        try archiveCheck(archive_write_disk_set_standard_lookup(a), a, "set owner lookup")
    }

    deinit { archive_write_free(archive) }

    /// Creates the entry on disk under the root (a file stays open for `writeData`). The entry's
    /// path and hard link target must be relative. Returns a libarchive warning.
    func writeHeader(_ entry: TarEntry) throws -> String? {
        try withUTF8Names { try writeHeaderInUTF8(entry) }
    }

    /// The symlink (written earlier) that `path` would pass through, if any.
    func symlinkOnPath(_ path: String) -> String? {
        var prefix = ""
        for component in path.split(separator: "/").dropLast() {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            if symlinks.contains(prefix) { return prefix }
        }
        return nil
    }

    private func writeHeaderInUTF8(_ entry: TarEntry) throws -> String? {
        precondition(!entry.path.hasPrefix("/"), "entry paths are checked to be relative before extraction")
        if let link = symlinkOnPath(entry.path) {
            throw ArchiveError.failed(operation: "create", path: entry.path, reason: "it would be written through the symlink \(link)")
        }
        if entry.type == .hardlink, let target = entry.linkTarget {
            if let link = symlinkOnPath(target) {
                throw ArchiveError.failed(operation: "link", path: entry.path, reason: "its target \(target) passes through the symlink \(link)")
            }
            if symlinks.contains(target) { symlinks.insert(entry.path) }
        }
        if entry.type == .symlink { symlinks.insert(entry.path) }
        archive_entry_copy_pathname(entry.pointer, root + "/" + entry.path)
        if entry.type == .hardlink, let target = entry.linkTarget {
            precondition(!target.hasPrefix("/"))
            archive_entry_copy_hardlink(entry.pointer, root + "/" + target)
        }
        return try archiveCheck(archive_write_header(archive, entry.pointer), archive, "create", path: entry.path)
    }

    func writeData(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = archive_write_data(archive, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 { try archiveCheck(Int32(n), archive, "write", path: path) }
            done += n
        }
    }

    /// Finishes the entry: sets its times and permissions.
    func finishEntry(path: String) throws -> String? {
        try archiveCheck(archive_write_finish_entry(archive), archive, "finish", path: path)
    }

    /// Applies deferred directory times and permissions.
    func close() throws {
        try archiveCheck(archive_write_close(archive), archive, "close")
    }
}
