import Foundation

/// Who holds a repository's writer lock: recorded in `locks/writer.lock`.
public struct LockHolder: Codable, Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var pid: Int32
    public var startedAt: Date
    public var command: String

    public var description: String {
        "pid \(pid) on \(host) (`\(command)`, since \(Timestamp.formatSeconds(startedAt)))"
    }
}

/// The exclusive writer lock of a repository.
///
/// Taken by creating `locks/writer.lock` with `link(2)` from a fully written temporary file, so
/// the lock file is never seen half-written. A lock whose holder is a dead process on this host is
/// stale: it is broken with a warning. Any other holder is waited for, polling, up to the timeout.
///
/// Crash behaviour: a crashed holder leaves `locks/writer.lock`; the next writer on the same host
/// sees the dead pid and breaks it. A holder on another host must be removed by hand (the error
/// says how), since its liveness cannot be checked from here.
public final class RepositoryLock {
    public let path: String
    public let holder: LockHolder
    private var released = false

    private init(path: String, holder: LockHolder) {
        self.path = path
        self.holder = holder
    }

    /// Takes the lock, waiting up to `timeout` seconds; `warn` hears about broken stale locks.
    public static func acquire(
        locksDirectory: String, repositoryPath: String, command: String,
        timeout: TimeInterval, warn: (String) -> Void
    ) throws -> RepositoryLock {
        let path = locksDirectory + "/writer.lock"
        let me = LockHolder(host: FileSystem.hostName, pid: getpid(), startedAt: Date(), command: command)
        let temp = locksDirectory + "/writer.lock.\(me.pid).\(UInt32.random(in: 0...UInt32.max))"
        let data = Array(try Timestamp.jsonEncoder(pretty: false).encode(me))
        let sink = try FileSink(path: temp)
        try sink.write(data)
        try sink.finish()
        defer { unlink(temp) }

        let start = Date()
        var delay: useconds_t = 20_000
        while true {
            if link(temp, path) == 0 {
                try FileSystem.sync(locksDirectory)
                return RepositoryLock(path: path, holder: me)
            }
            guard errno == EEXIST else {
                throw RepositoryError.io(path: path, operation: "create lock", errno: errno)
            }
            let current = readHolder(path)
            if let current, current.host == me.host, !processIsAlive(current.pid) {
                warn("breaking stale lock \(path) held by \(current), which is no longer running")
                unlink(path)
                continue
            }
            let waited = Date().timeIntervalSince(start)
            if waited >= timeout {
                let holder = current ?? LockHolder(host: "unknown host", pid: 0, startedAt: Date(timeIntervalSince1970: 0), command: "unreadable lock file")
                throw RepositoryError.lockHeld(path: repositoryPath, holder: holder, waited: waited)
            }
            usleep(min(delay, useconds_t(max(0.001, timeout - waited) * 1_000_000)))
            delay = min(delay * 2, 500_000)
        }
    }

    /// Releases the lock; only the holder's own lock file is removed.
    public func release() {
        guard !released else { return }
        released = true
        if let current = Self.readHolder(path), current.host == holder.host, current.pid == holder.pid {
            unlink(path)
        }
    }

    deinit { release() }

    static func readHolder(_ path: String) -> LockHolder? {
        guard let bytes = try? FileSystem.readFile(path) else { return nil }
        return try? Timestamp.jsonDecoder().decode(LockHolder.self, from: Data(bytes))
    }

    static func processIsAlive(_ pid: Int32) -> Bool {
        if pid <= 0 { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
