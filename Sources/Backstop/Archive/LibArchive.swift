import CArchive
import Foundation

/// Errors from libarchive, with the path or entry they concern.
public enum ArchiveError: Error, CustomStringConvertible, ExitStatusProviding {
    case failed(operation: String, path: String?, reason: String)

    public var description: String {
        switch self {
        case let .failed(operation, path, reason):
            return "libarchive \(operation)\(path.map { " of \($0)" } ?? "") failed: \(reason)"
        }
    }

    /// 65: libarchive refused the tar data it read or was given. A failure of the sink or source
    /// under it is rethrown as that error itself (a full disk stays a `FileError`, 74).
    public var exitStatus: ExitStatus { .integrity }
}

/// Checks a libarchive status; every libarchive call that returns one goes through here.
/// Warnings (`ARCHIVE_WARN`) are returned so the caller can record them. `path` (for the
/// message) is built only on failure: this runs for every entry of a backup.
@discardableResult
private func archiveCheck(_ status: Int32, _ archive: OpaquePointer, _ operation: String,
                          path: @autoclosure () -> String? = nil) throws -> String? {
    if status == ARCHIVE_OK || status == ARCHIVE_EOF { return nil }
    let reason = archive_error_string(archive).map { String(cString: $0) } ?? "status \(status)"
    if status == ARCHIVE_WARN { return reason }
    throw ArchiveError.failed(operation: operation, path: path(), reason: reason)
}

// clearedErrno: errno is set to 0 before each libarchive call that converts names (writing and
// reading a header). When a conversion fails, which is expected (a non-UTF-8 name written,
// any non-ASCII name read under the C locale), libarchive reads errno, which the conversion
// does not set, and takes ENOMEM for "out of memory": a fatal "Can't allocate memory for
// Pathname" whenever earlier work on the thread had left ENOMEM behind.

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

extension EntryType {
    /// The type of a libarchive entry, for the writer and the reader alike: a hard link when it
    /// links to a stored path, else its file type (libarchive's `AE_IF*` are the `S_IF*` values).
    /// A type tar cannot tell is a file.
    fileprivate init(_ entry: OpaquePointer, isHardlink: Bool) {
        if isHardlink { self = .hardlink; return }
        let filetype = archive_entry_filetype(entry)
        switch UInt32(filetype) {
        case backstop_ae_ifreg(): self = .file
        case backstop_ae_ifdir(): self = .directory
        case backstop_ae_iflnk(): self = .symlink
        default:
            switch mode_t(filetype) & S_IFMT {
            case S_IFIFO: self = .fifo
            case S_IFCHR: self = .characterDevice
            case S_IFBLK: self = .blockDevice
            default: self = .file
            }
        }
    }
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

/// Calls `body` with `bytes` as a NUL-terminated C string (a path or name), byte for byte (never
/// re-encoded). The one such helper: the archive writer and the snapshot writer's own system calls
/// use it.
func withBytesAsCString<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
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

    /// Counts `bytes` of whole entries that the caller put into the stream itself (the files
    /// cache appends a parent's frames): only the offset moves. Call it between entries (after
    /// `finishEntry`). libarchive keeps no position of its own between entries here (no blocking:
    /// `bytes_per_block` is 0), so the end-of-archive blocks still come out right.
    func skip(bytes: Int64) {
        precondition(bytes >= 0, "skip(bytes:) cannot go back")
        offset += bytes
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
        // The display form of the name, for messages only: built when one is needed.
        func shownPath() -> String { EntryRecord.escaped(storedPath) }
        // libarchive reads the file through the source path; the stored name is set once.
        withBytesAsCString(diskPath) { archive_entry_copy_sourcepath(entry, $0) }
        var st = st
        var warning = try archiveCheck(archive_read_disk_entry_from_file(disk, entry, fd, &st), disk, "read metadata", path: shownPath())
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
        errno = 0   // see `clearedErrno`
        if let w = try check(archive_write_header(archive, entry), "write header", path: shownPath()) {
            // A name that is not UTF-8 is stored as its bytes (`hdrcharset=BINARY`), by design,
            // so libarchive's "Can't translate pathname (or linkname) to UTF-8" is no warning.
            let binaryNames = !EntryRecord.isValidUTF8(storedPath) || !(linkTarget.map(EntryRecord.isValidUTF8) ?? true)
            let expected = binaryNames && (w.hasPrefix("Can't translate pathname") || w.hasPrefix("Can't translate linkname"))
            if !expected { warning = w }
        }

        let meta = EntryMetadata(
            type: EntryType(entry, isHardlink: hardlinkTo != nil),
            mode: UInt32(archive_entry_mode(entry)) & 0o7777,
            uid: archive_entry_uid(entry), gid: archive_entry_gid(entry),
            mtime: FileTime(seconds: Int64(archive_entry_mtime(entry)), nanoseconds: Int32(archive_entry_mtime_nsec(entry))),
            size: archive_entry_size(entry),
            linkTarget: linkTarget,
            dataSegments: segments)
        return (meta, warning)
    }

    /// Writes the header of an entry read from another tar stream (`backup --tar-stdin`), from
    /// its values: `storedPath` (exact bytes), type, mode, owners and their names, mtime, size,
    /// link target, and extended attributes (POSIX ACLs, which the reader shows as
    /// `system.posix_acl_*` attributes, are left out). The caller then passes `entry.size` bytes
    /// to `writeData` for a regular file. Returns the metadata written and any libarchive warning.
    func writeHeader(copying source: TarEntry, storedPath: [UInt8], linkTarget: [UInt8]?) throws -> (EntryMetadata, String?) {
        try withUTF8Names {
            guard let entry = archive_entry_new() else { fatalError("libarchive: out of memory") }
            defer { archive_entry_free(entry) }
            func shownPath() -> String { EntryRecord.escaped(storedPath) }
            withBytesAsCString(storedPath) { archive_entry_copy_pathname(entry, $0) }
            let filetype: UInt32
            switch source.type {
            case .file, .hardlink: filetype = backstop_ae_ifreg()
            case .directory: filetype = backstop_ae_ifdir()
            case .symlink: filetype = backstop_ae_iflnk()
            case .fifo: filetype = 0o010000      // AE_IFIFO
            case .characterDevice: filetype = 0o020000  // AE_IFCHR
            case .blockDevice: filetype = 0o060000  // AE_IFBLK
            }
            archive_entry_set_filetype(entry, filetype)
            archive_entry_set_perm(entry, mode_t(source.mode & 0o7777))
            archive_entry_set_uid(entry, source.uid)
            archive_entry_set_gid(entry, source.gid)
            if let u = source.userName { archive_entry_copy_uname(entry, u) }
            if let g = source.groupName { archive_entry_copy_gname(entry, g) }
            archive_entry_set_mtime(entry, time_t(source.mtime.tv_sec), Int(source.mtime.tv_nsec))
            let size: Int64 = source.type == .file ? source.size : 0
            archive_entry_set_size(entry, size)
            switch source.type {
            case .hardlink: if let linkTarget { withBytesAsCString(linkTarget) { archive_entry_copy_hardlink(entry, $0) } }
            case .symlink: if let linkTarget { withBytesAsCString(linkTarget) { archive_entry_copy_symlink(entry, $0) } }
            default: break
            }
            for x in source.xattrs where !x.name.hasPrefix("system.posix_acl_") {
                x.value.withUnsafeBytes { archive_entry_xattr_add_entry(entry, x.name, $0.baseAddress, $0.count) }
            }
            var warning: String?
            errno = 0   // see `clearedErrno`
        if let w = try check(archive_write_header(archive, entry), "write header", path: shownPath()) {
                let binaryNames = !EntryRecord.isValidUTF8(storedPath) || !(linkTarget.map(EntryRecord.isValidUTF8) ?? true)
                let expected = binaryNames && (w.hasPrefix("Can't translate pathname") || w.hasPrefix("Can't translate linkname"))
                if !expected { warning = w }
            }
            let meta = EntryMetadata(
                type: source.type, mode: source.mode & 0o7777, uid: source.uid, gid: source.gid,
                mtime: FileTime(seconds: Int64(source.mtime.tv_sec), nanoseconds: Int32(source.mtime.tv_nsec)),
                size: size, linkTarget: source.type == .hardlink || source.type == .symlink ? linkTarget : nil, dataSegments: nil)
            return (meta, warning)
        }
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
    private func check(_ status: Int32, _ operation: String, path: @autoclosure () -> String? = nil) throws -> String? {
        if let sinkError, status != ARCHIVE_OK { throw sinkError }
        return try archiveCheck(status, archive, operation, path: path())
    }
}

/// An entry header read from a tar stream, as plain values.
///
/// Names are the exact bytes of the archive (`rawPath`, `rawLinkTarget`); `path` and
/// `linkTarget` are display forms only, never to be compared or used to create files.
struct TarEntry {
    let path: String
    let rawPath: [UInt8]
    let type: EntryType
    /// The logical size (for a sparse file, with its holes).
    let size: Int64
    let mode: UInt32
    /// The symlink target (symlinks) or the linked path (hard links).
    let linkTarget: String?
    let rawLinkTarget: [UInt8]?
    let uid: Int64
    let gid: Int64
    let userName: String?
    let groupName: String?
    let mtime: timespec
    let device: dev_t
    /// Extended attributes, and POSIX ACLs as their `system.posix_acl_*` attributes.
    let xattrs: [(name: String, value: [UInt8])]
}

/// A C character-type locale for reading names. Under it, libarchive cannot convert a pax
/// header's UTF-8 name to the locale's character set and falls back to the header's exact
/// bytes; under a UTF-8 locale it would normalise every name to Unicode NFC, merging `café` in
/// NFC and NFD into one name (restore then looped on the second). Names are bytes.
nonisolated(unsafe) private let byteLocale: locale_t? = newlocale(Int32(1 << LC_CTYPE), "C", nil)

private func withByteNames<T>(_ body: () throws -> T) rethrows -> T {
    guard let locale = byteLocale else { return try body() }
    let previous = uselocale(locale)
    defer { uselocale(previous) }
    return try body()
}

/// The exact bytes of a C string.
private func bytes(_ p: UnsafePointer<CChar>?) -> [UInt8]? {
    guard let p else { return nil }
    return Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
}

/// A shared block of zeros: the holes of sparse files, as content.
private let zeroBlock = [UInt8](repeating: 0, count: 64 << 10)

/// Reads a tar stream pulled chunk by chunk from `next` (nil at the end), with libarchive.
final class TarReader {
    private let archive: OpaquePointer
    private let next: () throws -> [UInt8]?
    private var current: [UInt8] = []
    private var sourceError: Error?
    private var entrySize: Int64 = 0

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
        try withByteNames { try nextEntryAsBytes() }
    }

    private func nextEntryAsBytes() throws -> TarEntry? {
        var entry: OpaquePointer?
        errno = 0   // see `clearedErrno`
        let status = archive_read_next_header(archive, &entry)
        if status == ARCHIVE_EOF { return nil }
        if status == ARCHIVE_WARN, let reason = archive_error_string(archive).map({ String(cString: $0) }),
           reason.contains("can't be converted") {
            // The expected fallback to a name's exact bytes (see `byteLocale`).
        } else {
            try check(status, "read header")
        }
        guard let e = entry else { return nil }
        let hardlink = bytes(archive_entry_hardlink(e))
        let symlink = bytes(archive_entry_symlink(e))
        let type = EntryType(e, isHardlink: hardlink != nil)
        var path = bytes(archive_entry_pathname(e)) ?? []
        while path.count > 1 && path.last == UInt8(ascii: "/") { path.removeLast() }  // tar writes directories as "name/"
        let link = hardlink ?? symlink
        var xattrs: [(name: String, value: [UInt8])] = []
        archive_entry_xattr_reset(e)
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var length = 0
        while archive_entry_xattr_next(e, &name, &value, &length) == ARCHIVE_OK {
            guard let name else { continue }
            xattrs.append((String(cString: name), value.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []))
        }
        for (kind, xattrName) in [(ARCHIVE_ENTRY_ACL_TYPE_ACCESS, "system.posix_acl_access"),
                                  (ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, "system.posix_acl_default")] {
            if let acl = Self.posixACL(e, kind: kind) { xattrs.append((xattrName, acl)) }
        }
        let size = archive_entry_size(e)
        entrySize = type == .file ? size : 0  // only a regular file's content ends in a hole
        return TarEntry(path: EntryRecord.display(path), rawPath: path, type: type, size: size,
                        mode: UInt32(archive_entry_mode(e)) & 0o7777, linkTarget: link.map(EntryRecord.display), rawLinkTarget: link,
                        uid: archive_entry_uid(e), gid: archive_entry_gid(e),
                        userName: archive_entry_uname(e).map { String(cString: $0) }, groupName: archive_entry_gname(e).map { String(cString: $0) },
                        mtime: timespec(tv_sec: time_t(archive_entry_mtime(e)), tv_nsec: Int(archive_entry_mtime_nsec(e))),
                        device: archive_entry_rdev(e), xattrs: xattrs)
    }

    /// An entry's POSIX.1e ACL of one kind in the Linux `system.posix_acl_*` attribute format
    /// (version 2; entries of tag, permissions and id, sorted by tag then id), or nil when the
    /// entry has none beyond its mode.
    private static func posixACL(_ e: OpaquePointer, kind: Int32) -> [UInt8]? {
        guard archive_entry_acl_reset(e, kind) > (kind == ARCHIVE_ENTRY_ACL_TYPE_ACCESS ? 3 : 0) else { return nil }
        var items: [(tag: UInt16, perm: UInt16, id: UInt32)] = []
        var type: Int32 = 0, permset: Int32 = 0, tag: Int32 = 0, qual: Int32 = 0
        var name: UnsafePointer<CChar>?
        while archive_entry_acl_next(e, kind, &type, &permset, &tag, &qual, &name) == ARCHIVE_OK {
            let linuxTag: UInt16
            switch tag {
            case ARCHIVE_ENTRY_ACL_USER_OBJ: linuxTag = 0x01
            case ARCHIVE_ENTRY_ACL_USER: linuxTag = 0x02
            case ARCHIVE_ENTRY_ACL_GROUP_OBJ: linuxTag = 0x04
            case ARCHIVE_ENTRY_ACL_GROUP: linuxTag = 0x08
            case ARCHIVE_ENTRY_ACL_MASK: linuxTag = 0x10
            case ARCHIVE_ENTRY_ACL_OTHER: linuxTag = 0x20
            default: continue
            }
            var id = UInt32.max
            if linuxTag == 0x02 || linuxTag == 0x08 {
                id = UInt32(bitPattern: qual)
                if let name {
                    if linuxTag == 0x02, let pw = getpwnam(name) { id = pw.pointee.pw_uid }
                    if linuxTag == 0x08, let gr = getgrnam(name) { id = gr.pointee.gr_gid }
                }
            }
            items.append((linuxTag, UInt16(permset & 7), id))
        }
        guard !items.isEmpty else { return nil }
        items.sort { ($0.tag, $0.id) < ($1.tag, $1.id) }
        var out: [UInt8] = []
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        le(UInt32(2))
        for i in items { le(i.tag); le(i.perm); le(i.id) }
        return out
    }

    /// Where the current entry's first header block starts in the stream.
    var headerPosition: Int64 { archive_read_header_position(archive) }

    /// Passes the current entry's logical content to `body` in order, piece by piece, up to its
    /// size: data as stored, and the holes of a sparse file as zeros with `hole` true (a writer
    /// skips those; a digest covers them).
    func readPieces(_ body: (_ bytes: UnsafeRawBufferPointer, _ hole: Bool) throws -> Void) throws {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        var position: Int64 = 0
        func holes(to end: Int64) throws {
            while position < end {
                let n = Int(min(Int64(zeroBlock.count), end - position))
                try zeroBlock.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n]), true) }
                position += Int64(n)
            }
        }
        while true {
            let status = archive_read_data_block(archive, &buffer, &size, &offset)
            if status == ARCHIVE_EOF { break }
            try check(status, "read data")
            guard offset >= position else {
                throw ArchiveError.failed(operation: "read data", path: nil, reason: "data block at offset \(offset) overlaps the previous one (ends at \(position))")
            }
            try holes(to: offset)
            if size > 0 { try body(UnsafeRawBufferPointer(start: buffer, count: size), false) }
            position += Int64(size)
        }
        try holes(to: entrySize)
    }

    /// Passes the current entry's logical content (holes as zeros) to `body`, block by block.
    func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try readPieces { bytes, _ in try body(bytes) }
    }

    @discardableResult
    private func check(_ status: Int32, _ operation: String) throws -> String? {
        if let sourceError, status != ARCHIVE_OK { throw sourceError }
        return try archiveCheck(status, archive, operation)
    }
}

/// The libarchive linked into this process, as it reports itself ("libarchive 3.6.2 zlib/1.2.13 …").
public enum LibArchiveLibrary {
    public static var version: String { String(cString: archive_version_details()) }
}
