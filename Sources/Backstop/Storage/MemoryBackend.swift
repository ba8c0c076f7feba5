import Foundation

/// A repository held in memory: for tests of everything that is not about the local disk, and
/// for programs that want a scratch repository. Objects and leases behave as the protocol says
/// (atomic puts, create-only, expiring leases); nothing survives the process.
public final class MemoryBackend: StorageBackend, @unchecked Sendable {
    public let location: String
    private let lock = NSLock()
    private var objects: [StorageKey: [UInt8]] = [:]
    private var leases: [String: LockHolder] = [:]
    /// Bumped on every put of a new key and every delete: the change token.
    private var generation = 0

    public init(name: String = "memory") {
        location = "memory:\(name)"
    }

    public var defaultCatalogPath: String? { nil }

    public func prepare() throws {}

    /// Every key stored, sorted: tests look at what a command left.
    public var allKeys: [StorageKey] {
        lock.lock()
        defer { lock.unlock() }
        return objects.keys.sorted()
    }

    /// Replaces an object's bytes without the protocol's rules: tests damage a repository.
    public func overwrite(_ key: StorageKey, with bytes: [UInt8]?) {
        lock.lock()
        defer { lock.unlock() }
        objects[key] = bytes
        generation += 1
    }

    public func open(_ key: StorageKey) throws -> ByteSource {
        lock.lock()
        defer { lock.unlock() }
        guard let bytes = objects[key] else { throw StorageError.notFound(location: location, key: key) }
        return ArrayByteSource(bytes)
    }

    public func size(of key: StorageKey) throws -> Int64? {
        lock.lock()
        defer { lock.unlock() }
        return objects[key].map { Int64($0.count) }
    }

    @discardableResult
    public func put(_ key: StorageKey, _ bytes: [UInt8], mode: PutMode) throws -> PutOutcome {
        try Interruption.check()
        lock.lock()
        defer { lock.unlock() }
        if objects[key] != nil && mode == .createOnly { return .alreadyPresent }
        if objects[key] == nil { generation += 1 }
        objects[key] = bytes
        return .stored
    }

    public func makeWriter(for key: StorageKey) throws -> ObjectWriter {
        MemoryObjectWriter(key: key, backend: self)
    }

    public func list(under prefix: StorageKey) throws -> [StorageKey] {
        lock.lock()
        defer { lock.unlock() }
        return objects.keys.filter { $0.rawValue.hasPrefix(prefix.rawValue + "/") }.sorted()
    }

    public func children(of prefix: StorageKey?) throws -> [String] {
        lock.lock()
        defer { lock.unlock() }
        let depth = prefix?.components.count ?? 0
        var names = Set<String>()
        for key in objects.keys where prefix.map({ key.rawValue.hasPrefix($0.rawValue + "/") }) ?? true {
            names.insert(key.components[depth])
        }
        return names.sorted()
    }

    public func delete(_ key: StorageKey) throws {
        try Interruption.check()
        lock.lock()
        defer { lock.unlock() }
        if objects.removeValue(forKey: key) != nil { generation += 1 }
    }

    public func changeToken(under prefix: StorageKey) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return "\(generation)"
    }

    public func removeLeftovers(warn: (String) -> Void) throws {}

    public func acquireLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                             warn: (String) -> Void) throws -> StorageLease {
        let me = LockHolder.current(command: command, duration: duration)
        let start = Date()
        while true {
            try Interruption.check()
            lock.lock()
            if let current = leases[name] {
                // In one process, only expiry frees a lease: the holder may be another thread.
                if let expiry = current.expiresAt, expiry < Date() {
                    leases[name] = me
                    lock.unlock()
                    warn("broke stale lease \(name) of \(location) held by \(current): its lease expired at \(Timestamp.formatSeconds(expiry)) and was not renewed")
                    return MemoryLease(name: name, holder: me, duration: duration, backend: self)
                }
                lock.unlock()
                let waited = Date().timeIntervalSince(start)
                if waited >= timeout {
                    throw RepositoryError.lockHeld(path: location, holder: current, waited: waited, lockFile: "lease \(name)")
                }
                usleep(20_000)
                continue
            }
            leases[name] = me
            lock.unlock()
            return MemoryLease(name: name, holder: me, duration: duration, backend: self)
        }
    }

    public func leaseHolder(_ name: String) -> LockHolder? {
        lock.lock()
        defer { lock.unlock() }
        return leases[name]
    }

    /// Sets or clears the lease record directly: tests plant a stale or foreign holder.
    public func setLease(_ name: String, to holder: LockHolder?) {
        lock.lock()
        defer { lock.unlock() }
        leases[name] = holder
    }

    fileprivate func replaceLease(_ name: String, ifHeldBy old: LockHolder, with new: LockHolder?) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard leases[name] == old else { return false }
        leases[name] = new
        return true
    }
}

final class MemoryObjectWriter: ObjectWriter, @unchecked Sendable {
    let key: StorageKey
    private let backend: MemoryBackend
    private var bytes: [UInt8] = []
    private var done = false

    init(key: StorageKey, backend: MemoryBackend) {
        self.key = key
        self.backend = backend
    }

    func write(_ buffer: UnsafeRawBufferPointer) throws {
        try Interruption.check()
        bytes.append(contentsOf: buffer)
    }
    func markBoundary() throws {}
    func finish() throws {}

    func commit(mode: PutMode) throws -> PutOutcome {
        precondition(!done, "an object writer commits once")
        done = true
        defer { bytes = [] }
        return try backend.put(key, bytes, mode: mode)
    }

    func abort() { done = true }
}

final class MemoryLease: StorageLease, @unchecked Sendable {
    let name: String
    private(set) var holder: LockHolder
    private let duration: TimeInterval
    private let backend: MemoryBackend
    private let state = NSLock()
    private var released = false

    init(name: String, holder: LockHolder, duration: TimeInterval, backend: MemoryBackend) {
        self.name = name
        self.holder = holder
        self.duration = duration
        self.backend = backend
    }

    func renew() throws {
        state.lock()
        defer { state.unlock() }
        guard !released else { return }
        var renewed = holder
        renewed.expiresAt = Date().addingTimeInterval(duration)
        guard backend.replaceLease(name, ifHeldBy: holder, with: renewed) else {
            throw StorageError.io(location: backend.location, key: nil, operation: "renew lease \(name) of",
                                  reason: "it was broken by another writer after it expired")
        }
        holder = renewed
    }

    func recordHolder() throws {}

    func release() {
        state.lock()
        defer { state.unlock() }
        guard !released else { return }
        released = true
        _ = backend.replaceLease(name, ifHeldBy: holder, with: nil)
    }

    deinit { release() }
}

/// Bytes in memory as a `ByteSource`.
public final class ArrayByteSource: ByteSource {
    private let bytes: [UInt8]
    public private(set) var bytesRead: Int64 = 0
    public var size: Int64 { Int64(bytes.count) }

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try Interruption.check()
        guard offset >= 0, offset + Int64(count) <= size else {
            throw StorageError.io(location: "memory", key: nil, operation: "read \(count) bytes at offset \(offset) of an object of \(size) bytes in",
                                  reason: "the object is shorter")
        }
        bytesRead += Int64(count)
        return Array(bytes[Int(offset)..<Int(offset) + count])
    }
}
