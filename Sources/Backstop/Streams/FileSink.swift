import Foundation

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
