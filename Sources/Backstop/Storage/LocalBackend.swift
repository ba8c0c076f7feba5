import Foundation

/// A repository in a local directory (or a network filesystem mounted as one).
///
/// A key is a path below the root. Every put goes through a temporary file in `tmp/`: it is
/// written, fsynced, then renamed into place (`.replace`) or hard-linked there (`.createOnly`,
/// so an object already present is never touched), and the directory that gained the name is
/// fsynced. A crash leaves the old object or the new one, whole, and perhaps a temporary file in
/// `tmp/` that the next writer removes. The exclusive lease is `locks/writer.lock` (`LocalLock`).
///
/// This is the one place where a repository's local paths are built.
public final class LocalBackend: StorageBackend, @unchecked Sendable {
    /// The repository's directory, without a trailing slash.
    public let root: String

    public init(root: String) {
        var p = root
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        self.root = p
    }

    public var location: String { root }

    public var defaultCatalogPath: String? { root + "/catalog.sqlite" }

    /// The local path of `key`.
    public func path(of key: StorageKey) -> String { root + "/" + key.rawValue }

    private var tmpDirectory: String { root + "/tmp" }
    private var locksDirectory: String { root + "/locks" }

    /// The folders every local repository has.
    static let folders = ["snapshots", "events", "verifications", "tmp", "locks"]

    public func prepare() throws {
        try FileSystem.makeDirectory(root)
        for folder in Self.folders { try FileSystem.makeDirectory(root + "/" + folder) }
        try FileSystem.sync(root)
    }

    /// Whether the root is missing, or exists but is not a directory.
    public var rootIsNotADirectory: Bool { FileSystem.exists(root) && !FileSystem.isDirectory(root) }

    public func open(_ key: StorageKey) throws -> ByteSource {
        try FileByteSource(path: path(of: key), regularOnly: true)
    }

    public func size(of key: StorageKey) throws -> Int64? {
        let p = path(of: key)
        var st = stat()
        if lstat(p, &st) != 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw FileError.open(path: p, errno: errno)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FileError.notRegular(path: p) }
        return Int64(st.st_size)
    }

    @discardableResult
    public func put(_ key: StorageKey, _ bytes: [UInt8], mode: PutMode) throws -> PutOutcome {
        try makeWriter(for: key).store(bytes, mode: mode)
    }

    public func makeWriter(for key: StorageKey) throws -> ObjectWriter {
        let temp = tmpDirectory + "/" + Self.temporaryName()
        return LocalObjectWriter(key: key, backend: self, sink: try FileSink(path: temp), temp: temp)
    }

    /// `put-PID-RANDOM-HOST`: whose it is, so the next writer removes only the dead's.
    static func temporaryName() -> String {
        "put-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(ProcessIdentity.hostName)"
    }

    /// Moves a finished temporary file to `key`'s path: see the type's comment.
    fileprivate func publish(temp: String, key: StorageKey, mode: PutMode) throws -> PutOutcome {
        let final = path(of: key)
        try makeParents(of: key)
        let outcome: PutOutcome
        switch mode {
        case .replace:
            try FileSystem.rename(temp, final)
            outcome = .stored
        case .createOnly:
            if link(temp, final) == 0 {
                outcome = .stored
            } else if errno == EEXIST {
                outcome = .alreadyPresent
            } else {
                throw RepositoryError.io(path: final, operation: "create", errno: errno)
            }
            unlink(temp)
        }
        if outcome == .stored { try FileSystem.sync((final as NSString).deletingLastPathComponent) }
        return outcome
    }

    /// Creates the folders above `key` that are missing, fsyncing each one's parent.
    private func makeParents(of key: StorageKey) throws {
        var dir = root
        for component in key.components.dropLast() {
            let next = dir + "/" + component
            if mkdir(next, 0o755) == 0 {
                try FileSystem.sync(dir)
            } else if errno != EEXIST {
                throw RepositoryError.io(path: next, operation: "create directory", errno: errno)
            }
            dir = next
        }
    }

    public func list(under prefix: StorageKey) throws -> [StorageKey] {
        var out: [StorageKey] = []
        func walk(_ key: StorageKey) throws {
            for name in try children(of: key) {
                let child = key.appending(name)
                var st = stat()
                if lstat(path(of: child), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                    try walk(child)
                } else {
                    out.append(child)
                }
            }
        }
        try walk(prefix)
        return out.sorted()
    }

    public func children(of prefix: StorageKey?) throws -> [String] {
        let p = prefix.map(path(of:)) ?? root
        do {
            return try FileSystem.list(p)
        } catch let RepositoryError.io(_, _, e) where e == ENOENT || e == ENOTDIR {
            return []
        }
    }

    public func delete(_ key: StorageKey) throws {
        let p = path(of: key)
        if unlink(p) != 0 {
            if errno == ENOENT || errno == ENOTDIR { return }
            throw RepositoryError.io(path: p, operation: "remove", errno: errno)
        }
        // Folders that only held objects below a top-level folder (`snapshots/<id>/`) go with
        // their last object; the top-level folders stay.
        var parent = key.parent
        var synced = false
        while let folder = parent, folder.components.count >= 2 {
            if rmdir(path(of: folder)) != 0 { break }
            parent = folder.parent
        }
        if let remaining = parent {
            try FileSystem.sync(path(of: remaining))
            synced = true
        }
        if !synced { try FileSystem.sync(root) }
    }

    public func changeToken(under prefix: StorageKey) -> String? {
        let token = FileSystem.fingerprint(path(of: prefix))
        return token.isEmpty ? nil : token
    }

    /// How old another host's temporary file must be before it counts as abandoned.
    static let foreignTemporaryAge: TimeInterval = 3600

    /// Removes from `tmp/` what interrupted writers left: temporary files of processes of this
    /// host that are gone, other hosts' older than an hour, and anything older versions left
    /// there (staging folders of snapshots, `pruning-*` folders), which were only ever written
    /// under the writer lock.
    public func removeLeftovers(warn: (String) -> Void) throws {
        let host = ProcessIdentity.hostName
        for name in try FileSystem.list(tmpDirectory) {
            let p = tmpDirectory + "/" + name
            if let owner = Self.temporaryOwner(name) {
                if owner.host == host {
                    if owner.pid == getpid() || ProcessIdentity.isAlive(owner.pid) { continue }
                } else {
                    var st = stat()
                    guard lstat(p, &st) == 0,
                          Date().timeIntervalSince1970 - TimeInterval(st.st_mtim.tv_sec) > Self.foreignTemporaryAge else { continue }
                }
            }
            warn("removing tmp/\(name), left behind by an interrupted writer")
            try FileSystem.removeTree(p)
        }
    }

    /// The pid and host of a `put-PID-RANDOM-HOST` name.
    static func temporaryOwner(_ name: String) -> (pid: Int32, host: String)? {
        guard name.hasPrefix("put-") else { return nil }
        let parts = name.dropFirst(4).split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let pid = Int32(parts[0]), UInt32(parts[1]) != nil, !parts[2].isEmpty else { return nil }
        return (pid, String(parts[2]))
    }

    public func acquireLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                             warn: (String) -> Void) throws -> StorageLease {
        precondition(name == "writer", "a local repository has one lease, the writer's")
        return try LocalLock.acquire(locksDirectory: locksDirectory, repositoryPath: root, command: command,
                                     duration: duration, timeout: timeout, warn: warn)
    }

    public func leaseHolder(_ name: String) -> LockHolder? {
        let p = locksDirectory + "/\(name).lock"
        return LocalLock.readHolder(p) ?? (FileSystem.exists(p) ? LockHolder(host: "unknown", pid: 0, startedAt: Date(), command: "an unreadable lock file") : nil)
    }
}

/// A streaming put into a local repository: a `FileSink` in `tmp/`, published on commit.
final class LocalObjectWriter: ObjectWriter, @unchecked Sendable {
    let key: StorageKey
    private let backend: LocalBackend
    private let sink: FileSink
    private let temp: String
    private let state = NSLock()
    private var done = false

    init(key: StorageKey, backend: LocalBackend, sink: FileSink, temp: String) {
        self.key = key
        self.backend = backend
        self.sink = sink
        self.temp = temp
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws { try sink.write(bytes) }
    func markBoundary() throws {}
    func finish() throws { try sink.finish() }

    func commit(mode: PutMode) throws -> PutOutcome {
        state.lock()
        defer { state.unlock() }
        precondition(!done, "an object writer commits once")
        done = true
        do {
            return try backend.publish(temp: temp, key: key, mode: mode)
        } catch {
            unlink(temp)
            throw error
        }
    }

    func abort() {
        state.lock()
        defer { state.unlock() }
        guard !done else { return }
        done = true
        unlink(temp)
    }
}
