import Foundation

/// The few POSIX file operations that local storage and restores need, each checked.
enum FileSystem {
    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw RepositoryError.io(path: path, operation: "create directory", errno: errno)
        }
    }

    /// fsyncs a file or directory.
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RepositoryError.io(path: path, operation: "open for fsync", errno: errno) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw RepositoryError.io(path: path, operation: "fsync", errno: errno) }
    }

    static func rename(_ from: String, _ to: String) throws {
        if Foundation.rename(from, to) != 0 {
            throw RepositoryError.io(path: to, operation: "rename \(from) to", errno: errno)
        }
    }

    enum ExchangeOutcome { case exchanged, unsupported, failed(Int32) }

    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    /// glibc's `renameat2`, which Swift's Glibc module does not export; nil on older C libraries.
    private static let renameat2: RenameAt2? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
    }()

    /// Swaps two names atomically (`renameat2(RENAME_EXCHANGE)`). `.unsupported` when the C
    /// library or the filesystem cannot.
    static func exchange(_ a: String, _ b: String) -> ExchangeOutcome {
        guard let renameat2 else { return .unsupported }
        let renameExchange: UInt32 = 1 << 1
        if renameat2(AT_FDCWD, a, AT_FDCWD, b, renameExchange) == 0 { return .exchanged }
        let e = errno
        return e == EINVAL || e == ENOSYS || e == ENOTSUP ? .unsupported : .failed(e)
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Names in a directory, sorted, without `.` and `..`.
    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw RepositoryError.io(path: path, operation: "list", errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        let source = try FileByteSource(path: path)
        return try source.read(at: 0, count: Int(source.size))
    }

    /// Removes a tree, not following symlinks.
    static func removeTree(_ path: String) throws {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            if exists(path) { throw RepositoryError.io(path: path, operation: "remove", errno: EIO) }
        }
    }

    /// What changes when entries are added to or removed from a directory: its mtime (in
    /// nanoseconds), link count and inode. Empty when it cannot be read.
    static func fingerprint(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "" }
        return "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec):\(st.st_nlink):\(st.st_ino)"
    }

}
