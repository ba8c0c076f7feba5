import Foundation

/// How a put treats an object that is already there.
public enum PutMode: Sendable {
    /// Never replaces: an object already present is left as it is (`PutOutcome.alreadyPresent`).
    /// Frames and snapshot files: content that is never rewritten.
    case createOnly
    /// Replaces the object atomically: a reader sees the old object or the new one, whole.
    case replace
}

public enum PutOutcome: Sendable, Equatable {
    case stored
    /// A create-only put found the key taken; nothing was written.
    case alreadyPresent
}

/// Where a repository's objects live: a local directory, memory (tests), later object storage.
///
/// Everything is addressed by `StorageKey`; nothing outside `Storage/` knows whether a
/// repository is local. Every operation is atomic at the level of one object: a put leaves the
/// object whole or absent (or, for `.replace`, the old one whole), never a part of it.
///
/// Errors: a backend throws errors that conform to `ExitStatusProviding` and name the object
/// as an operator would find it (a local backend: the file's path).
public protocol StorageBackend: AnyObject, Sendable {
    /// Where the repository is, for messages: a local path or a URL.
    var location: String { get }

    /// Where a catalog for this repository lives by default: inside a local repository; nil for
    /// backends whose catalog must be a local cache chosen by the caller.
    var defaultCatalogPath: String? { get }

    /// Where this host keeps catalogs of remote repositories, when the backend has no catalog
    /// of its own (`defaultCatalogPath` nil): `<dir>/<repository id>/catalog.sqlite`. Nil by
    /// default.
    var catalogCacheDirectory: String? { get }

    /// Makes whatever the backend needs before the first object is written (a local
    /// repository's folders). Idempotent.
    func prepare() throws

    /// Random access to an object (ranged reads). Throws when it is absent.
    func open(_ key: StorageKey) throws -> ByteSource

    /// The object's size, or nil when it is absent.
    func size(of key: StorageKey) throws -> Int64?

    /// Stores `bytes` under `key`, atomically and durably.
    @discardableResult
    func put(_ key: StorageKey, _ bytes: [UInt8], mode: PutMode) throws -> PutOutcome

    /// A streaming put for objects too large to hold in memory: write, `finish()`, then
    /// `commit(mode:)`. Nothing is visible under `key` before the commit.
    func makeWriter(for key: StorageKey) throws -> ObjectWriter

    /// Every key below `prefix` (at any depth), sorted. Empty when there are none.
    func list(under prefix: StorageKey) throws -> [StorageKey]

    /// The names one level below `prefix` (the whole repository when nil): objects and
    /// folder-like prefixes alike, sorted.
    func children(of prefix: StorageKey?) throws -> [String]

    /// Removes an object; an absent one is not an error.
    func delete(_ key: StorageKey) throws

    /// A cheap token that changes whenever a name directly below `prefix` is added or removed,
    /// or nil when the backend has none (the caller then lists every time).
    func changeToken(under prefix: StorageKey) -> String?

    /// Removes what interrupted writers of this host left behind (a local backend's temporary
    /// files). Call only while holding the exclusive lease.
    func removeLeftovers(warn: (String) -> Void) throws

    /// Takes the lease `name` (the exclusive writer lease is "writer"), waiting up to `timeout`
    /// seconds for its holder; a holder that is gone (or whose lease expired) is broken, and
    /// `warn` hears of it. Throws `RepositoryError.lockHeld` after the timeout.
    func acquireLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                      warn: (String) -> Void) throws -> StorageLease

    /// Takes a shared hold on the lease `name`: any number of shared holders at once, none while
    /// an exclusive holder has it, and an exclusive acquirer waits for every shared one. For
    /// writers whose keys never collide (backups from several hosts). A backend without shared
    /// leases gives the exclusive one (its `isShared` is false). Same waiting and breaking rules.
    func acquireSharedLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                            warn: (String) -> Void) throws -> StorageLease

    /// Who holds the lease `name` now, if anyone (a best-effort look, for readers).
    func leaseHolder(_ name: String) -> LockHolder?
}

extension StorageBackend {
    public var catalogCacheDirectory: String? { nil }

    public func acquireSharedLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                                   warn: (String) -> Void) throws -> StorageLease {
        try acquireLease(name, command: command, duration: duration, timeout: timeout, warn: warn)
    }

    /// The whole object.
    public func read(_ key: StorageKey) throws -> [UInt8] {
        let source = try open(key)
        return try source.read(at: 0, count: Int(source.size))
    }

    public func exists(_ key: StorageKey) throws -> Bool {
        try size(of: key) != nil
    }
}

/// A streaming put (see `StorageBackend.makeWriter`).
public protocol ObjectWriter: ByteSink {
    var key: StorageKey { get }
    /// After `finish()`: publishes the object under `key`, atomically and durably.
    @discardableResult
    func commit(mode: PutMode) throws -> PutOutcome
    /// Drops what was written, unless committed. Idempotent; safe from the interruption watcher.
    func abort()
}

extension ObjectWriter {
    /// Writes `bytes` as the whole object and commits it; on any failure, drops what was written.
    @discardableResult
    func store(_ bytes: [UInt8], mode: PutMode) throws -> PutOutcome {
        do {
            try write(bytes)
            try finish()
            return try commit(mode: mode)
        } catch {
            abort()
            throw error
        }
    }
}

/// A lease held on a backend: exclusive while held, until released or expired.
public protocol StorageLease: AnyObject, Sendable {
    var holder: LockHolder { get }
    /// Extends the lease: the holder record is written again with a later expiry.
    func renew() throws
    /// Writes the holder record of a lease taken without one (a local repository on a full
    /// disk: see `LocalLock`). Throws when it still cannot be written.
    func recordHolder() throws
    /// Gives the lease up. Safe to call twice, and from the interruption watcher's thread.
    func release()
    /// Whether other shared holders may hold it at the same time (see `acquireSharedLease`).
    var isShared: Bool { get }
}

extension StorageLease {
    public var isShared: Bool { false }
}

/// Who holds a lease: recorded in the lease object (a local repository's `locks/writer.lock`).
///
/// `bootID` (`/proc/sys/kernel/random/boot_id`) and `processStart` (field 22 of `/proc/PID/stat`,
/// in clock ticks since boot) tell a live holder from another process that got the same pid after
/// the holder died or the host rebooted. `expiresAt` is when another host may break the lease
/// (the holder renews it while it works). Lock files written by older versions lack them.
public struct LockHolder: Codable, Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var pid: Int32
    public var startedAt: Date
    public var command: String
    public var bootID: String?
    public var processStart: UInt64?
    public var expiresAt: Date?

    public init(host: String, pid: Int32, startedAt: Date, command: String, bootID: String? = nil,
                processStart: UInt64? = nil, expiresAt: Date? = nil) {
        self.host = host
        self.pid = pid
        self.startedAt = startedAt
        self.command = command
        self.bootID = bootID
        self.processStart = processStart
        self.expiresAt = expiresAt
    }

    public var description: String {
        "pid \(pid) on \(host) (`\(command)`, since \(Timestamp.formatSeconds(startedAt)))"
    }

    /// This process, holding a lease for `duration` seconds from now.
    static func current(command: String, duration: TimeInterval) -> LockHolder {
        let pid = getpid()
        let now = Date()
        return LockHolder(host: ProcessIdentity.hostName, pid: pid, startedAt: now, command: command,
                          bootID: ProcessIdentity.bootID(), processStart: ProcessIdentity.startTicks(pid),
                          expiresAt: now.addingTimeInterval(duration))
    }

    /// Why this holder's lease may be broken by `me`, or nil when it may still be working.
    /// On the same host: its process is gone (or the host rebooted, or the pid was reused),
    /// whatever the expiry says. From another host: only when the lease expired.
    func staleness(seenBy me: LockHolder, now: Date = Date()) -> String? {
        guard host == me.host else {
            if let expiresAt, expiresAt < now {
                return "its lease expired at \(Timestamp.formatSeconds(expiresAt)) and was not renewed"
            }
            return nil
        }
        if !ProcessIdentity.isAlive(pid) { return "that process is no longer running" }
        if let theirs = bootID, let mine = me.bootID, theirs != mine {
            return "the host rebooted since (boot ID \(theirs), now \(mine))"
        }
        if let theirs = processStart, let now = ProcessIdentity.startTicks(pid), theirs != now {
            return "pid \(pid) now belongs to another process (started at tick \(now), the holder at \(theirs))"
        }
        return nil
    }
}

/// What tells this process and host apart from others: for leases and restore staging names.
enum ProcessIdentity {
    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(nulTerminated: buffer)
    }

    static func isAlive(_ pid: Int32) -> Bool {
        if pid <= 0 { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
    static func startTicks(_ pid: Int32) -> UInt64? {
        guard let bytes = readProcFile("/proc/\(pid)/stat") else { return nil }
        // The command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = String(decoding: bytes[(close + 1)...], as: UTF8.self).split(separator: " ")
        // fields[0] is field 3 (state), so field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    static func bootID() -> String? {
        guard let bytes = readProcFile("/proc/sys/kernel/random/boot_id") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    /// Reads a `/proc` file to its end (their `stat` size is 0).
    static func readProcFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
        }
    }
}

/// Errors of backends that have no local path to name (memory; later object storage).
public enum StorageError: Error, CustomStringConvertible, ExitStatusProviding {
    case notFound(location: String, key: StorageKey)
    case io(location: String, key: StorageKey?, operation: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(location, key): return "cannot open \(key) in \(location): no such object"
        case let .io(location, key, operation, reason):
            return "cannot \(operation) \(key.map { "\($0) in " } ?? "")\(location): \(reason)"
        }
    }

    public var exitStatus: ExitStatus { .ioError }
}
