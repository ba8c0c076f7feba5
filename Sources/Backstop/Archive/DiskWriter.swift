import CArchive
import Foundation

/// Why an entry could not be written to the restore's staging folder.
public enum ExtractionError: Error, CustomStringConvertible, ExitStatusProviding {
    /// The entry is hostile or inconsistent with what is already restored (the snapshot is at
    /// fault): a path declared twice, a path through a symlink, a hard link to a non-file.
    case refused(path: String, reason: String)
    /// The target's filesystem failed (disk full, I/O error, read-only, permission): the
    /// snapshot is not at fault.
    case io(path: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .refused(path, reason):
            return "\(path): \(reason)"
        case let .io(path, operation, e):
            return "cannot \(operation) \(path) while restoring: \(String(cString: strerror(e))); the snapshot is intact, the staging folder was removed and the target is unchanged — "
                + (e == ENOSPC || e == EDQUOT ? "free space on that filesystem, or restore elsewhere with --to, and run the restore again"
                                              : "fix the target filesystem, or restore elsewhere with --to, and run the restore again")
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .refused: return .integrity
        case .io: return .ioError
        }
    }
}

/// An errno from a failed system call.
struct Errno: Error, ExitStatusProviding {
    let code: Int32
    /// The restore writer turns it into `ExtractionError.io` (74); should one escape, it is 74 too.
    var exitStatus: ExitStatus { .ioError }
}

/// Runs a system call, retrying it while it fails with EINTR; -1 becomes `Errno`. Every system
/// call of the restore writer goes through here.
@inline(__always)
@discardableResult
func systemCall(_ call: () -> Int32) throws -> Int32 {
    while true {
        let result = call()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { throw Errno(code: code) }
    }
}

/// `systemCall` for the calls that return a size (`pwrite`).
@inline(__always)
func systemCall(_ call: () -> Int) throws -> Int {
    while true {
        let result = call()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { throw Errno(code: code) }
    }
}

private let createFile: Int32 = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
private let openDirectory: Int32 = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC

/// Writes entries into `root`, a fresh private folder, and never touches anything outside it.
///
/// The repository is untrusted input, so every operation is relative to a directory descriptor
/// opened with `O_NOFOLLOW` from the root down: a path through a symlink (or a non-directory)
/// cannot be opened, whatever the snapshot contains. Every node is created exclusively
/// (`O_CREAT|O_EXCL`, `mkdirat`, `symlinkat`, `linkat`, `mknodat`), so an entry whose path already
/// exists is refused (a directory re-declared as a directory is allowed: its later metadata
/// wins). Metadata goes to the entry's own descriptor (`fchown`, `fchmod`, `fsetxattr`,
/// `futimens`) or, for symlinks and special files, to its name relative to its parent's
/// descriptor with `AT_SYMLINK_NOFOLLOW`; no metadata call ever follows a symlink. Hard links
/// get no metadata of their own (they share their target's inode) and may only point to
/// regular files. Directories get their modes, owners and times at the end, deepest first.
///
/// Files are written with `pwrite` at the offsets the tar gives, so the holes of sparse files
/// stay holes, and truncated to their size at the end. A failed write (disk full) is an
/// `ExtractionError.io`, never counted as progress.
///
/// Owners are restored (by name when the name exists here, else by number) only when
/// `restoreOwners`. Without `samePermissions`, setuid, setgid and sticky bits are dropped and
/// the umask applies; with it, modes are exact, except that setuid (setgid) is dropped when the
/// file's owner (group) is not the one the snapshot recorded. Extended attributes and ACLs are
/// restored on files and directories (a filesystem that does not support them gives a warning).
///
/// Crash behaviour: whatever was written so far stays in `root`; the caller removes it.
final class DiskWriter {
    private let rootPath: String
    private let root: Int32
    private let restoreOwners: Bool
    private let samePermissions: Bool
    private let umaskBits: mode_t
    /// The open directories of the current parent path, from the root down.
    private var stack: [(name: [UInt8], fd: Int32)] = []
    private var current: Current?
    /// Directories whose metadata is applied at the end, by path components.
    private var directories: [[UInt8]: Metadata] = [:]
    private var userIDs: [String: uid_t?] = [:]
    private var groupIDs: [String: gid_t?] = [:]
    private(set) var warnings: [String] = []

    /// What `finishEntry` needs about the entry being written.
    private struct Current {
        var display: String
        var type: EntryType
        var parent: Int32
        var name: [UInt8]
        var fd: Int32
        /// The logical position (holes included).
        var end: Int64
        /// The end of the last byte written (the file's size until `finishEntry`).
        var dataEnd: Int64 = 0
        var size: Int64
        var metadata: Metadata?
    }

    private struct Metadata {
        var mode: UInt32
        var uid: uid_t
        var gid: gid_t
        var mtime: timespec
        var xattrs: [(name: String, value: [UInt8])]
    }

    init(root: String, restoreOwners: Bool, samePermissions: Bool) throws {
        rootPath = root
        self.restoreOwners = restoreOwners
        self.samePermissions = samePermissions
        umaskBits = DiskWriter.currentUmask()
        do {
            self.root = try systemCall { open(root, openDirectory) }
        } catch {
            throw ExtractionError.io(path: root, operation: "open", errno: (error as? Errno)?.code ?? EIO)
        }
    }

    deinit {
        if let fd = current?.fd, fd >= 0 { Foundation.close(fd) }
        for (_, fd) in stack { Foundation.close(fd) }
        Foundation.close(root)
    }

    // MARK: Entries

    /// Creates `entry` (a regular file stays open for `write`). Throws `ExtractionError`.
    func create(_ entry: TarEntry) throws {
        precondition(current == nil, "finishEntry not called")
        let display = entry.path
        var components = DiskWriter.components(entry.rawPath)
        if components.contains([0x2E, 0x2E]) { throw ExtractionError.refused(path: display, reason: "path contains '..'") }
        guard let name = components.popLast() else {
            guard entry.type == .directory else { throw ExtractionError.refused(path: display, reason: "names the restore's root") }
            directories[[]] = metadata(entry)
            return
        }
        let parent = try openParents(components, display: display)
        var fd: Int32 = -1
        var meta: Metadata?
        do {
            switch entry.type {
            case .file:
                fd = try systemCall { openat(parent, name.cString, createFile, mode_t(0o600)) }
                meta = metadata(entry)
            case .directory:
                do {
                    try systemCall { mkdirat(parent, name.cString, mode_t(0o700)) }
                } catch let e as Errno where e.code == EEXIST {
                    var st = stat()
                    try systemCall { fstatat(parent, name.cString, &st, AT_SYMLINK_NOFOLLOW) }
                    guard st.st_mode & S_IFMT == S_IFDIR else { throw e }
                }
                directories[DiskWriter.key(components, name)] = metadata(entry)
            case .symlink:
                let target = entry.rawLinkTarget ?? []
                try systemCall { symlinkat(target.cString, parent, name.cString) }
                meta = metadata(entry)
            case .hardlink:
                try link(entry, parent: parent, name: name)
            case .fifo, .characterDevice, .blockDevice:
                var kind: mode_t = S_IFBLK
                if entry.type == .fifo { kind = S_IFIFO } else if entry.type == .characterDevice { kind = S_IFCHR }
                let node: mode_t = kind | mode_t(0o600)
                let device: dev_t = entry.type == .fifo ? 0 : entry.device
                let cName = name.cString
                do {
                    try systemCall { mknodat(parent, cName, node, device) }
                    meta = metadata(entry)
                } catch let e as Errno where e.code == EPERM && entry.type != .fifo {
                    warnings.append("\(display): device node not created (creating device nodes needs root)")
                }
            }
        } catch let e as Errno {
            throw DiskWriter.error(e.code, path: display, operation: "create")
        }
        current = Current(display: display, type: entry.type, parent: parent, name: name, fd: fd, end: 0,
                          size: entry.type == .file ? entry.size : 0, metadata: meta)
    }

    /// Writes the current file's next piece of content; a hole is skipped (it reads as zeros).
    func write(_ bytes: UnsafeRawBufferPointer, hole: Bool) throws {
        guard var c = current, c.fd >= 0 else {
            if bytes.isEmpty { return }
            throw ExtractionError.refused(path: current?.display ?? "", reason: "a \(current?.type.rawValue ?? "") entry carries data")
        }
        defer { current = c }
        if hole {
            c.end += Int64(bytes.count)
            return
        }
        var done = 0
        while done < bytes.count {
            let fd = c.fd, offset = c.end
            do {
                let start = bytes.baseAddress! + done, count = bytes.count - done
                let n = try systemCall { pwrite(fd, start, count, off_t(offset)) }
                if n == 0 { throw Errno(code: EIO) }
                done += n
                c.end += Int64(n)
                c.dataEnd = c.end
            } catch let e as Errno {
                throw DiskWriter.error(e.code, path: c.display, operation: "write")
            }
        }
    }

    /// Ends the current entry: a file gets its size (holes at the end) and closes; metadata is
    /// applied (directories': at `close`).
    func finishEntry() throws {
        guard let c = current else { return }
        current = nil
        do {
            if c.fd >= 0 {
                do {
                    if c.dataEnd < c.size { try systemCall { ftruncate(c.fd, off_t(c.size)) } }
                    if let m = c.metadata { try apply(m, fd: c.fd, display: c.display) }
                } catch {
                    Foundation.close(c.fd)
                    throw error
                }
                // close() reports delayed write errors (NFS, quotas); it is never retried.
                if Foundation.close(c.fd) != 0, errno != EINTR { throw Errno(code: errno) }
            } else if let m = c.metadata {
                try applyByName(m, parent: c.parent, name: c.name, type: c.type, display: c.display)
            }
        } catch let e as Errno {
            throw DiskWriter.error(e.code, path: c.display, operation: "set the metadata of")
        }
    }

    /// Applies the directories' metadata, deepest first, and closes every descriptor.
    func close() throws {
        for key in directories.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }).reversed() {
            let m = directories[key]!
            let components = DiskWriter.components(key)
            let display = EntryRecord.display(key)
            do {
                let fd: Int32
                if components.isEmpty { fd = root } else {
                    _ = try openParents(components, display: display, create: false)
                    fd = stack.last!.fd
                }
                try apply(m, fd: fd, display: display)
            } catch let e as Errno {
                throw DiskWriter.error(e.code, path: display, operation: "set the metadata of")
            }
        }
        directories = [:]
        for (_, fd) in stack { Foundation.close(fd) }
        stack = []
    }

    // MARK: Paths

    /// A path's components, without empty and `.` components.
    private static func components(_ path: [UInt8]) -> [[UInt8]] {
        path.split(separator: 0x2F, omittingEmptySubsequences: true).map(Array.init).filter { $0 != [0x2E] }
    }

    private static func key(_ parents: [[UInt8]], _ name: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for c in parents { out += c; out.append(0x2F) }
        return out + name
    }

    /// The descriptor of the directory `components` names (relative to the root), opened one
    /// component at a time with `O_NOFOLLOW`; missing directories are created (mode 0755 less
    /// the umask) when `create`. Reuses the open descriptors of the previous entry's path.
    @discardableResult
    private func openParents(_ components: [[UInt8]], display: String, create: Bool = true) throws -> Int32 {
        var depth = 0
        while depth < stack.count, depth < components.count, stack[depth].name == components[depth] { depth += 1 }
        while stack.count > depth { Foundation.close(stack.removeLast().fd) }
        for (i, name) in components.enumerated().dropFirst(depth) {
            let parent = stack.last?.fd ?? root
            var fd: Int32
            do {
                fd = try systemCall { openat(parent, name.cString, openDirectory) }
            } catch let e as Errno where e.code == ENOENT && create {
                do {
                    try systemCall { mkdirat(parent, name.cString, mode_t(0o755)) }
                    fd = try systemCall { openat(parent, name.cString, openDirectory) }
                } catch {
                    throw DiskWriter.error((error as? Errno)?.code ?? EIO, path: display, operation: "create the parent directory of")
                }
            } catch let e as Errno where e.code == ELOOP || e.code == ENOTDIR || e.code == ENOENT {
                let prefix = EntryRecord.display(DiskWriter.key(Array(components[..<i]), name))
                throw ExtractionError.refused(path: display, reason: e.code == ENOENT
                    ? "its directory \(prefix) is not in the restore"
                    : "it would be written through \(prefix), which is a symlink or not a directory")
            } catch {
                throw DiskWriter.error((error as? Errno)?.code ?? EIO, path: display, operation: "open the parent directory of")
            }
            stack.append((name, fd))
        }
        return stack.last?.fd ?? root
    }

    /// Creates a hard link to an earlier regular file of the restore, found without following
    /// symlinks.
    private func link(_ entry: TarEntry, parent: Int32, name: [UInt8]) throws {
        var target = DiskWriter.components(entry.rawLinkTarget ?? [])
        guard let targetName = target.popLast(), !target.contains([0x2E, 0x2E]) else {
            throw ExtractionError.refused(path: entry.path, reason: "hard link target \(entry.linkTarget ?? "") is not a path in the restore")
        }
        var dir = root
        var opened: [Int32] = []
        defer { for fd in opened { Foundation.close(fd) } }
        do {
            for c in target {
                let from = dir
                dir = try systemCall { openat(from, c.cString, openDirectory) }
                opened.append(dir)
            }
            var st = stat()
            let from = dir
            try systemCall { fstatat(from, targetName.cString, &st, AT_SYMLINK_NOFOLLOW) }
            guard st.st_mode & S_IFMT == S_IFREG else {
                throw ExtractionError.refused(path: entry.path, reason: "hard link to \(entry.linkTarget ?? ""), which is not a regular file")
            }
            try systemCall { linkat(from, targetName.cString, parent, name.cString, 0) }
        } catch let e as Errno where e.code == ELOOP || e.code == ENOTDIR || e.code == ENOENT {
            throw ExtractionError.refused(path: entry.path, reason: "its hard link target \(entry.linkTarget ?? "") is not a file restored before it (or passes through a symlink)")
        } catch let e as Errno where e.code == EEXIST {
            throw ExtractionError.refused(path: entry.path, reason: "already exists in the restore: the snapshot declares this path twice")
        } catch let e as Errno {
            throw DiskWriter.error(e.code, path: entry.path, operation: "link")
        }
    }

    private static func error(_ code: Int32, path: String, operation: String) -> ExtractionError {
        switch code {
        case EEXIST: return .refused(path: path, reason: "already exists in the restore: the snapshot declares this path twice")
        case ELOOP, ENOTDIR: return .refused(path: path, reason: "it would be written through a symlink or a non-directory")
        default: return .io(path: path, operation: operation, errno: code)
        }
    }

    // MARK: Metadata

    private func metadata(_ entry: TarEntry) -> Metadata {
        var uid = uid_t(truncatingIfNeeded: entry.uid), gid = gid_t(truncatingIfNeeded: entry.gid)
        if restoreOwners {
            if let name = entry.userName, let u = userID(name) { uid = u }
            if let name = entry.groupName, let g = groupID(name) { gid = g }
        }
        return Metadata(mode: entry.mode, uid: uid, gid: gid, mtime: entry.mtime, xattrs: entry.xattrs)
    }

    /// The mode to set, given whether the owner and group are the recorded ones.
    private func finalMode(_ m: Metadata, ownerSet: Bool) -> mode_t {
        var mode = mode_t(m.mode & 0o7777)
        if !samePermissions {
            return mode & 0o777 & ~umaskBits
        }
        if !(ownerSet || geteuid() == m.uid) { mode &= ~S_ISUID }
        if !(ownerSet || getegid() == m.gid) { mode &= ~S_ISGID }
        return mode
    }

    /// Owner, mode, extended attributes and ACLs, then times, on an open descriptor.
    private func apply(_ m: Metadata, fd: Int32, display: String) throws {
        var ownerSet = false
        if restoreOwners {
            do {
                try systemCall { fchown(fd, m.uid, m.gid) }
                ownerSet = true
            } catch let error as Errno where error.code == EPERM || error.code == EINVAL {
                warnings.append("\(display): owner \(m.uid):\(m.gid) not restored: \(String(cString: strerror(error.code)))")
            }
        }
        try systemCall { fchmod(fd, finalMode(m, ownerSet: ownerSet)) }
        for (name, value) in m.xattrs {
            do {
                try systemCall { value.withUnsafeBytes { fsetxattr(fd, name, $0.baseAddress, $0.count, 0) } }
            } catch let error as Errno where error.code != ENOSPC && error.code != EDQUOT && error.code != EIO {
                warnings.append("\(display): extended attribute \(name) not restored: \(String(cString: strerror(error.code)))")
            }
        }
        var times: [timespec] = [timespec(tv_sec: 0, tv_nsec: utimeOmit), m.mtime]
        try systemCall { futimens(fd, &times) }
    }

    /// Owner, mode (not for symlinks) and times by name relative to the parent's descriptor,
    /// never following a symlink. Extended attributes are not restored on these.
    private func applyByName(_ m: Metadata, parent: Int32, name: [UInt8], type: EntryType, display: String) throws {
        let cName = name.cString
        var ownerSet = false
        if restoreOwners {
            do {
                try systemCall { fchownat(parent, cName, m.uid, m.gid, AT_SYMLINK_NOFOLLOW) }
                ownerSet = true
            } catch let error as Errno where error.code == EPERM || error.code == EINVAL {
                warnings.append("\(display): owner \(m.uid):\(m.gid) not restored: \(String(cString: strerror(error.code)))")
            }
        }
        if type != .symlink {
            try systemCall { fchmodat(parent, cName, finalMode(m, ownerSet: ownerSet), AT_SYMLINK_NOFOLLOW) }
        }
        var times: [timespec] = [timespec(tv_sec: 0, tv_nsec: utimeOmit), m.mtime]
        try systemCall { utimensat(parent, cName, &times, AT_SYMLINK_NOFOLLOW) }
    }

    private func userID(_ name: String) -> uid_t? {
        if let cached = userIDs[name] { return cached }
        var pw = passwd(), result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let found: uid_t? = getpwnam_r(name, &pw, &buffer, buffer.count, &result) == 0 && result != nil ? pw.pw_uid : nil
        userIDs[name] = found
        return found
    }

    private func groupID(_ name: String) -> gid_t? {
        if let cached = groupIDs[name] { return cached }
        var gr = group(), result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let found: gid_t? = getgrnam_r(name, &gr, &buffer, buffer.count, &result) == 0 && result != nil ? gr.gr_gid : nil
        groupIDs[name] = found
        return found
    }

    /// The process's umask, read without changing it (from /proc; `umask(2)` would change it for
    /// every thread for a moment).
    private static func currentUmask() -> mode_t {
        if let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Umask:") }),
           let value = mode_t(line.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) {
            return value
        }
        return 0o022
    }
}

/// `UTIME_OMIT` (a macro Swift cannot import): leave that time as it is.
private let utimeOmit: Int = 1_073_741_822

private extension Array where Element == UInt8 {
    /// The bytes with a terminating NUL, for system calls.
    var cString: [CChar] { map { CChar(bitPattern: $0) } + [0] }
}
