import Foundation

/// Random access to stored bytes: a local file now, an object store's ranged GET later.
public protocol ByteSource: AnyObject {
    var size: Int64 { get }
    /// Reads exactly `count` bytes at `offset`; fewer means the source is truncated, and throws.
    func read(at offset: Int64, count: Int) throws -> [UInt8]
    /// Bytes read so far: tests use it to prove partial reads stay partial.
    var bytesRead: Int64 { get }
}

/// What went wrong reading or writing a local file.
public enum FileError: Error, CustomStringConvertible, ExitStatusProviding {
    case open(path: String, errno: Int32)
    case read(path: String, errno: Int32)
    case write(path: String, errno: Int32)
    case sync(path: String, errno: Int32)
    case truncated(path: String, offset: Int64, wanted: Int)
    /// A stored object that is a symlink, a directory or a device: never written by Backstop.
    case notRegular(path: String)

    public var description: String {
        switch self {
        case let .open(path, e): return "cannot open \(path): \(String(cString: strerror(e)))"
        case let .read(path, e): return "cannot read \(path): \(String(cString: strerror(e)))"
        case let .write(path, e):
            let full = e == ENOSPC || e == EDQUOT ? "; free some space and run the command again (nothing stored before was changed)" : ""
            return "cannot write \(path): \(String(cString: strerror(e)))\(full)"
        case let .sync(path, e): return "cannot flush \(path) to disk: \(String(cString: strerror(e)))"
        case let .truncated(path, offset, wanted):
            return "\(path) is truncated: wanted \(wanted) bytes at offset \(offset)"
        case let .notRegular(path):
            return "\(path) is not a regular file (a symlink, folder or device where Backstop stores a file): the repository was altered"
        }
    }

    /// 74, except a stored file that ends early: that is truncated data (65).
    public var exitStatus: ExitStatus {
        switch self {
        case .open, .read, .write, .sync: return .ioError
        case .truncated, .notRegular: return .integrity
        }
    }

    /// The file the error is about.
    public var path: String {
        switch self {
        case let .open(p, _), let .read(p, _), let .write(p, _), let .sync(p, _), let .truncated(p, _, _), let .notRegular(p): return p
        }
    }

    public var errnoValue: Int32? {
        switch self {
        case let .open(_, e), let .read(_, e), let .write(_, e), let .sync(_, e): return e
        case .truncated, .notRegular: return nil
        }
    }
}

/// A local file read with `pread`.
public final class FileByteSource: ByteSource {
    public let path: String
    public let size: Int64
    public private(set) var bytesRead: Int64 = 0
    private let fd: Int32

    /// Opens `path`. With `regularOnly`, a symlink (not followed) or anything but a regular file
    /// is refused: a stored object is never a link to somewhere else.
    public init(path: String, regularOnly: Bool = false) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC | (regularOnly ? O_NOFOLLOW | O_NONBLOCK : 0))
        if fd < 0 {
            if errno == ELOOP && regularOnly { throw FileError.notRegular(path: path) }
            throw FileError.open(path: path, errno: errno)
        }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = errno
            close(fd)
            throw FileError.read(path: path, errno: e)
        }
        if regularOnly && (st.st_mode & S_IFMT) != S_IFREG {
            close(fd)
            throw FileError.notRegular(path: path)
        }
        size = Int64(st.st_size)
    }

    deinit { close(fd) }

    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try Interruption.check()
        var failure: Error?
        let out = [UInt8](unsafeUninitializedCapacity: count) { buffer, filled in
            filled = 0
            while filled < count {
                let n = pread(fd, buffer.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = FileError.read(path: path, errno: errno)
                    return
                }
                if n == 0 {
                    failure = FileError.truncated(path: path, offset: offset, wanted: count)
                    return
                }
                filled += n
            }
        }
        bytesRead += Int64(out.count)
        if let failure { throw failure }
        return out
    }
}
