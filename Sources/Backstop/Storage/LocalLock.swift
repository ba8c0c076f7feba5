import Foundation

/// A lease of a local repository: the file `locks/NAME.lock` (the writer lease: `writer.lock`).
///
/// Taken by creating `locks/writer.lock` with `link(2)` from a fully written temporary file, so
/// the lock file is never seen half-written. A lock whose holder is gone from this host is stale
/// and broken with a warning: its pid is not running, the host rebooted since (another boot ID),
/// or the pid now belongs to a process that started at another time (pid reuse). Any other holder
/// is waited for, polling, up to the timeout.
///
/// Breaking is atomic: the breaker swaps its own lock file in for the stale one
/// (`renameat2(RENAME_EXCHANGE)`) and keeps the lock only if what it swapped out is the very file
/// it judged stale (same inode); otherwise it swaps back. So two writers breaking the same stale
/// lock never both hold it. Where the filesystem cannot exchange, the stale file is renamed aside
/// (`writer.lock.stale.PID.N.HOST`) and checked the same way before the breaker links its own;
/// that is not atomic (see the README's lock paragraph for the window it leaves).
///
/// A lock taken on a full disk is an empty file; its holder keeps a second name for it,
/// `writer.lock.PID.N.HOST`, until `recordHolder()`, so waiters still know whose it is. An empty
/// lock with no such name (its holder died and the name was lost) is stale once it is older than
/// `anonymousStaleAfter`.
///
/// Crash behaviour: a crashed holder leaves `locks/writer.lock` (and perhaps a temporary
/// `writer.lock.PID.N.HOST` or `writer.lock.stale.PID.N.HOST`); the next writer on the same host
/// sees the dead pid, breaks the lock and removes the temporary files of dead processes. A holder
/// on another host is waited for until its lease expires (`LockHolder.expiresAt`, renewed while
/// it works); a lock file without an expiry (older versions) must be removed by hand (the error
/// says how), since its holder's liveness cannot be checked from here.
public final class LocalLock: StorageLease, @unchecked Sendable {
    public let path: String
    public private(set) var holder: LockHolder
    /// Device and inode of the lock file we created: release removes that file and no other.
    private var identity: (dev: UInt64, ino: UInt64)
    /// True when the lock file is empty (taken on a full disk); `recordHolder()` fills it in.
    public private(set) var isAnonymous: Bool
    /// While anonymous: the second name of the lock file that tells waiters who holds it.
    private var holderName: String?
    private var released = false
    /// Guards `identity`, `isAnonymous`, `holderName` and `released`: `release()` may run on the
    /// interruption watcher's thread. Never held while writing a file (writes check for
    /// interruption, and the watcher runs `release()` under the interruption lock).
    private let releaseLock = NSLock()

    /// How old an empty lock file whose holder is unknown must be to count as stale.
    static let anonymousStaleAfter: TimeInterval = 60

    /// How long each renewal extends the lease.
    private let duration: TimeInterval

    private init(path: String, holder: LockHolder, duration: TimeInterval, identity: (UInt64, UInt64), anonymous: Bool) {
        self.path = path
        self.holder = holder
        self.duration = duration
        self.identity = identity
        self.isAnonymous = anonymous
        if anonymous {
            // Best effort (a full disk may refuse even a directory entry): without it, waiters
            // treat the empty lock as stale after `anonymousStaleAfter`.
            let name = (path as NSString).deletingLastPathComponent
                + "/writer.lock.\(holder.pid).\(UInt32.random(in: 0...UInt32.max)).\(holder.host)"
            if link(path, name) == 0 { holderName = name }
        }
    }

    /// Takes the lock, waiting up to `timeout` seconds; `warn` hears about broken stale locks.
    ///
    /// On a full disk (ENOSPC, EDQUOT) the holder record cannot be written: the lock is then taken
    /// with an empty file, so the caller can reclaim `tmp/`, and must call `recordHolder()`.
    public static func acquire(
        locksDirectory: String, repositoryPath: String, command: String, duration: TimeInterval,
        timeout: TimeInterval, warn: (String) -> Void
    ) throws -> LocalLock {
        let path = locksDirectory + "/writer.lock"
        removeDeadTemporaries(locksDirectory: locksDirectory)
        let me = LockHolder.current(command: command, duration: duration)
        let temp = locksDirectory + "/writer.lock.\(me.pid).\(UInt32.random(in: 0...UInt32.max)).\(me.host)"
        let anonymous = try writeHolder(me, to: temp)
        defer { unlink(temp) }
        guard let identity = fileIdentity(temp) else {
            throw RepositoryError.io(path: temp, operation: "stat", errno: errno)
        }

        let start = Date()
        var delay: useconds_t = 20_000
        while true {
            try Interruption.check()
            if link(temp, path) == 0 {
                try FileSystem.sync(locksDirectory)
                return LocalLock(path: path, holder: me, duration: duration, identity: identity, anonymous: anonymous)
            }
            guard errno == EEXIST else {
                throw RepositoryError.io(path: path, operation: "create lock", errno: errno)
            }
            let current = readHolderWithIdentity(path) ?? anonymousHolder(path, locksDirectory: locksDirectory)
            if let (stale, staleIdentity) = current, let reason = stale.staleness(seenBy: me) {
                if try breakStale(path: path, staleIdentity: staleIdentity, temp: temp, locksDirectory: locksDirectory) {
                    warn("broke stale lock \(path) held by \(stale): \(reason)")
                    removeDeadTemporaries(locksDirectory: locksDirectory)   // the dead holder's second name
                    try FileSystem.sync(locksDirectory)
                    return LocalLock(path: path, holder: me, duration: duration, identity: identity, anonymous: anonymous)
                }
                continue
            }
            let waited = Date().timeIntervalSince(start)
            if waited >= timeout {
                let holder = current?.0 ?? LockHolder(host: "unknown host", pid: 0, startedAt: Date(timeIntervalSince1970: 0), command: "unreadable lock file")
                throw RepositoryError.lockHeld(path: repositoryPath, holder: holder, waited: waited, lockFile: path)
            }
            usleep(min(delay, useconds_t(max(0.001, timeout - waited) * 1_000_000)))
            delay = min(delay * 2, 500_000)
        }
    }

    /// Writes the holder record into a lock file taken anonymously on a full disk (replacing it
    /// atomically). Throws when there is still no room: release the lock then.
    public func recordHolder() throws {
        releaseLock.lock()
        let pending = isAnonymous && !released
        releaseLock.unlock()
        guard pending else { return }
        try rewrite(holder)
    }

    /// Extends the lease by its duration from now: the holder record is replaced atomically
    /// with a later `expiresAt` (another host breaks a lease only once it expired).
    public func renew() throws {
        var renewed = holder
        renewed.expiresAt = Date().addingTimeInterval(duration)
        try rewrite(renewed)
    }

    /// Replaces our lock file with one holding `record`, keeping the lock throughout (the new
    /// file is renamed over ours, which is checked to still be ours first).
    private func rewrite(_ record: LockHolder) throws {
        // Host in the name: another host's writer must not take it for one of its own dead ones.
        let temp = path + ".\(record.pid).\(UInt32.random(in: 0...UInt32.max)).\(record.host)"
        defer { unlink(temp) }
        if try Self.writeHolder(record, to: temp) {
            throw RepositoryError.io(path: path, operation: "write the lock holder into", errno: ENOSPC)
        }
        guard let newIdentity = Self.fileIdentity(temp) else {
            throw RepositoryError.io(path: temp, operation: "stat", errno: errno)
        }
        releaseLock.lock()
        defer { releaseLock.unlock() }
        guard !released else { return }
        guard Self.fileIdentity(path).map({ $0 == identity }) == true else {
            throw RepositoryError.io(path: path, operation: "find own lock", errno: ENOENT)
        }
        try FileSystem.rename(temp, path)
        identity = newIdentity
        holder = record
        isAnonymous = false
        if let holderName { unlink(holderName) }
        holderName = nil
    }

    /// Releases the lock; only the holder's own lock file (by inode) is removed.
    /// Safe to call from the interruption watcher while the main thread unwinds.
    public func release() {
        releaseLock.lock()
        defer { releaseLock.unlock() }
        guard !released else { return }
        released = true
        if Self.fileIdentity(path).map({ $0 == identity }) == true {
            unlink(path)
        }
        if let holderName { unlink(holderName) }
    }

    deinit { release() }

    // MARK: - Holder records

    /// Writes `holder` to a new file at `path`. Returns true when the disk was full and an empty
    /// file was created instead.
    private static func writeHolder(_ holder: LockHolder, to path: String) throws -> Bool {
        let data = Array(try Timestamp.jsonEncoder(pretty: false).encode(holder))
        do {
            let sink = try FileSink(path: path)
            try sink.write(data)
            try sink.finish()
            return false
        } catch let error as FileError {
            unlink(path)
            guard let e = error.errnoValue, e == ENOSPC || e == EDQUOT else { throw error }
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0 { throw error }
            close(fd)
            return true
        }
    }

    static func readHolder(_ path: String) -> LockHolder? {
        readHolderWithIdentity(path)?.0
    }

    /// The holder recorded at `path` and the identity of the file it was read from.
    static func readHolderWithIdentity(_ path: String) -> (LockHolder, (dev: UInt64, ino: UInt64))? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0, st.st_size < 1 << 16 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count,
              let holder = try? Timestamp.jsonDecoder().decode(LockHolder.self, from: Data(bytes)) else { return nil }
        return (holder, (UInt64(st.st_dev), UInt64(st.st_ino)))
    }

    /// For an empty lock file (taken on a full disk): its holder, from the holder's second name
    /// `writer.lock.PID.N.HOST`; without one, a holder that counts as dead once the file is older
    /// than `anonymousStaleAfter` (else nil: wait).
    static func anonymousHolder(_ path: String, locksDirectory: String) -> (LockHolder, (dev: UInt64, ino: UInt64))? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size == 0 else { return nil }
        let identity = (dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
        let since = Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec))
        for name in (try? FileSystem.list(locksDirectory)) ?? [] {
            guard let parsed = temporaryName(name, prefix: "writer.lock."), let host = parsed.host,
                  fileIdentity(locksDirectory + "/" + name).map({ $0 == identity }) == true else { continue }
            return (LockHolder(host: host, pid: parsed.pid, startedAt: since, command: "a writer that took the lock on a full disk"), identity)
        }
        guard Date().timeIntervalSince(since) > anonymousStaleAfter else { return nil }
        // pid 0 is never running: `staleness` calls it stale, on this host.
        return (LockHolder(host: ProcessIdentity.hostName, pid: 0, startedAt: since,
                           command: "nobody: an empty lock file (taken on a full disk) whose holder is unknown, older than a minute"), identity)
    }

    static func fileIdentity(_ path: String) -> (dev: UInt64, ino: UInt64)? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    // MARK: - Staleness

    // MARK: - Breaking

    /// Replaces the stale lock file (identified by `staleIdentity`) with our `temp`, atomically.
    /// Returns true when we now hold the lock; false when the lock changed meanwhile (retry).
    private static func breakStale(
        path: String, staleIdentity: (dev: UInt64, ino: UInt64), temp: String, locksDirectory: String
    ) throws -> Bool {
        switch FileSystem.exchange(temp, path) {
        case .exchanged:
            // `temp` now names what was the lock.
            if fileIdentity(temp).map({ $0 == staleIdentity }) == true {
                return true   // the deferred unlink of `temp` removes the stale file
            }
            // Someone else broke it first: give their lock back.
            if case .failed(let e) = FileSystem.exchange(temp, path) {
                throw RepositoryError.io(path: path, operation: "restore the lock of another writer to", errno: e)
            }
            return false
        case .unsupported:
            let aside = locksDirectory + "/writer.lock.stale.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).\(ProcessIdentity.hostName)"
            guard Foundation.rename(path, aside) == 0 else { return false }   // gone meanwhile: retry
            if fileIdentity(aside).map({ $0 == staleIdentity }) == true {
                unlink(aside)
            } else if link(aside, path) == 0 {
                unlink(aside)   // moved a fresh lock aside: put it back
            }
            return false   // retry `link`
        case .failed(let e):
            if e == ENOENT { return false }
            throw RepositoryError.io(path: path, operation: "break stale lock", errno: e)
        }
    }

    /// Removes `writer.lock.PID.N.HOST` and `writer.lock.stale.PID.N.HOST` files of this host's
    /// processes that are not running (left when a writer was killed while waiting or breaking a
    /// lock, or failed to write them on a full disk), and the same without `.HOST` (older
    /// versions). A second name of the current lock file is kept: it says who holds it.
    static func removeDeadTemporaries(locksDirectory: String) {
        guard let names = try? FileSystem.list(locksDirectory) else { return }
        let host = ProcessIdentity.hostName
        let lockIdentity = fileIdentity(locksDirectory + "/writer.lock")
        for name in names {
            let parsed = temporaryName(name, prefix: "writer.lock.stale.") ?? temporaryName(name, prefix: "writer.lock.")
            guard let parsed, parsed.host == nil || parsed.host == host,
                  parsed.pid != getpid(), !ProcessIdentity.isAlive(parsed.pid) else { continue }
            let file = locksDirectory + "/" + name
            if let lockIdentity, fileIdentity(file).map({ $0 == lockIdentity }) == true { continue }
            unlink(file)
        }
    }

    /// The pid and host (nil in older names) of `PREFIX PID.N[.HOST]`.
    static func temporaryName(_ name: String, prefix: String) -> (pid: Int32, host: String?)? {
        guard name.hasPrefix(prefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: ".", maxSplits: 2)
        guard parts.count >= 2, let pid = Int32(parts[0]), UInt32(parts[1]) != nil else { return nil }
        return (pid, parts.count == 3 ? String(parts[2]) : nil)
    }
}
