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
        }
    }

    /// 74, except a stored file that ends early: that is truncated data (65).
    public var exitStatus: ExitStatus {
        switch self {
        case .open, .read, .write, .sync: return .ioError
        case .truncated: return .integrity
        }
    }

    public var errnoValue: Int32? {
        switch self {
        case let .open(_, e), let .read(_, e), let .write(_, e), let .sync(_, e): return e
        case .truncated: return nil
        }
    }
}

/// A local file read with `pread`.
public final class FileByteSource: ByteSource {
    public let path: String
    public let size: Int64
    public private(set) var bytesRead: Int64 = 0
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FileError.open(path: path, errno: errno) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = errno
            close(fd)
            throw FileError.read(path: path, errno: e)
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

/// Writes to a new file; `finish()` flushes it and fsyncs it, so it is durable once finished.
///
/// Crash behaviour: a partial file at `path`. Backstop only writes these under `tmp/`, whose
/// leftovers the next writer removes.
public final class FileSink: ByteSink {
    public let path: String
    private let fd: Int32
    private var pending: [UInt8] = []
    private static let bufferSize = 256 << 10
    private var closed = false

    /// Creates `path`; fails if it exists.
    public init(path: String, mode: mode_t = 0o644) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 { throw FileError.open(path: path, errno: errno) }
        pending.reserveCapacity(Self.bufferSize)
    }

    deinit { if !closed { close(fd) } }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if pending.count + bytes.count > Self.bufferSize { try flush() }
        if bytes.count >= Self.bufferSize {
            try writeAll(bytes)
        } else {
            pending.append(contentsOf: bytes)
        }
    }

    public func markBoundary() throws {}

    public func finish() throws {
        try flush()
        if fsync(fd) != 0 { throw FileError.sync(path: path, errno: errno) }
        closed = true
        if close(fd) != 0 { throw FileError.write(path: path, errno: errno) }
    }

    private func flush() throws {
        guard !pending.isEmpty else { return }
        try pending.withUnsafeBytes { try writeAll($0) }
        pending.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        try Self.writeAll(bytes, to: fd, name: path)
    }

    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
    static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32, name: String) throws {
        try Interruption.check()
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.write(path: name, errno: errno)
            }
            done += n
        }
    }
}
