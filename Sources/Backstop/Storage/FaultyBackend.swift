import Foundation

/// Test equipment: a wrapper around any backend that injects the failures storage meets in the
/// world, by rule, so the repository's promises (no half snapshot, nothing already stored lost,
/// a clear error with the right exit status) can be checked without filling a real disk or
/// killing a process. Not for production use; nothing in Backstop creates one.
///
/// Rules (each can be set or cleared at any time; counters start at 0 when the wrapper is made):
/// - `failPut(_:errno:)`: the N-th put fails (a `put`, or a streaming writer's `commit`; both
///   publish an object). `refusePuts(errno:)`: every put fails (a read-only repository: EROFS).
/// - `freeSpace`: bytes that may still be written (puts and writers' writes together); a write
///   beyond them fails with ENOSPC, as a full disk would.
/// - `failDelete(_:errno:)`: the N-th delete fails (btrfs can refuse an unlink with ENOSPC when
///   its metadata is full; an object store can answer with an error).
/// - `failReads(of:errno:when:in:)`: opening, or reading from, objects at or below a key fails
///   (EIO); reads can be limited to those that touch a byte range (one frame of a payload).
/// - `shortenReads(of:to:)`: reads of an object stop at `length` bytes although its size says
///   more (a short read): the source throws `FileError.truncated`.
/// - `flipBit(of:at:bit:)`: a bit of an object's byte at `offset` reads flipped (bit rot).
/// - `crashAfterPut(_:)` / `crashAfterDelete(_:)`: the N-th put (or delete) completes, and then
///   the process is taken as killed (SIGKILL): every later operation of this wrapper, its
///   writers, sources and leases throws `SimulatedCrash`, and nothing cleans up: aborts do
///   nothing, a lease is not released (its record stays, as a dead holder's would).
///
/// Errors are the ones the local backend throws for the same failure, naming the object (its
/// local path when the inner backend is local, else `LOCATION: KEY`): `FileError.write` with
/// ENOSPC for a full disk (74, with the "free some space" hint; the code that treats a full disk
/// specially looks for exactly that), `FileError.open`/`.read` for EIO (74), `FileError.truncated`
/// for a short read (65), `RepositoryError.io` for a failed delete (74).
///
/// Crash behaviour: this wrapper stores nothing itself; after a simulated crash the inner
/// backend holds exactly what a killed process would have left.
public final class FaultyBackend: StorageBackend, @unchecked Sendable {
    public let inner: StorageBackend
    private let lock = NSLock()

    // Counters.
    private var putCount = 0
    private var deleteCount = 0
    private var crashedFlag = false

    // Rules.
    private var putFailure: (number: Int, errno: Int32)?
    private var allPutsFail: Int32?
    private var space: Int64?
    private var deleteFailure: (number: Int, errno: Int32)?
    private var readFailures: [(prefix: StorageKey, errno: Int32, stage: ReadStage, range: Range<Int64>?)] = []
    private var shortReads: [StorageKey: Int64] = [:]
    private var bitFlips: [(key: StorageKey, offset: Int64, mask: UInt8)] = []
    private var crashPut: Int?
    private var crashDelete: Int?

    /// Where a read fault strikes: when the object is opened, or when bytes are read from it.
    public enum ReadStage: Sendable { case open, read }

    public init(_ inner: StorageBackend) {
        self.inner = inner
    }

    // MARK: - Rules and counters

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Puts attempted so far (`put` calls and writer commits, failed ones included).
    public var puts: Int { locked { putCount } }
    /// Deletes attempted so far (failed ones included).
    public var deletes: Int { locked { deleteCount } }
    /// Whether a simulated crash happened: every operation now throws `SimulatedCrash`.
    public var crashed: Bool { locked { crashedFlag } }

    /// The `number`-th put from now on (1 = the next one) fails with `errno`.
    public func failPut(_ number: Int, errno: Int32 = ENOSPC) { locked { putFailure = (putCount + number, errno) } }
    /// Every put fails with `errno` (nil: puts work again).
    public func refusePuts(errno: Int32? = EROFS) { locked { allPutsFail = errno } }
    /// Bytes that may still be written; nil: no limit.
    public var freeSpace: Int64? {
        get { locked { space } }
        set { locked { space = newValue } }
    }
    /// The `number`-th delete from now on fails with `errno`.
    public func failDelete(_ number: Int, errno: Int32 = ENOSPC) { locked { deleteFailure = (deleteCount + number, errno) } }
    /// Objects at or below `prefix` cannot be opened (`.open`) or read (`.read`; with `range`,
    /// only reads that touch those bytes fail).
    public func failReads(of prefix: StorageKey, errno: Int32 = EIO, when stage: ReadStage = .read, in range: Range<Int64>? = nil) {
        locked { readFailures.append((prefix, errno, stage, range)) }
    }
    /// Reads of `key` stop after `length` bytes, although its size says more.
    public func shortenReads(of key: StorageKey, to length: Int64) { locked { shortReads[key] = length } }
    /// The byte at `offset` of `key` reads with bit `bit` flipped.
    public func flipBit(of key: StorageKey, at offset: Int64, bit: Int = 0) {
        locked { bitFlips.append((key, offset, UInt8(1) << UInt8(bit & 7))) }
    }
    /// The `number`-th put from now on completes, and then the process counts as killed.
    public func crashAfterPut(_ number: Int) { locked { crashPut = putCount + number } }
    /// The `number`-th delete from now on completes, and then the process counts as killed.
    public func crashAfterDelete(_ number: Int) { locked { crashDelete = deleteCount + number } }
    /// Clears every rule (the counters and a crash stay).
    public func clearRules() {
        locked {
            putFailure = nil; allPutsFail = nil; space = nil; deleteFailure = nil
            readFailures = []; shortReads = [:]; bitFlips = []; crashPut = nil; crashDelete = nil
        }
    }

    /// How an error names `key`: as the local backend would, else `LOCATION: KEY`.
    func name(_ key: StorageKey) -> String {
        (inner as? LocalBackend)?.path(of: key) ?? "\(inner.location): \(key)"
    }

    func checkAlive() throws {
        if crashed { throw SimulatedCrash(location: inner.location) }
    }

    /// Before publishing `key` (`bytes` long, or nil for a writer's commit, whose bytes were
    /// counted as they were written).
    fileprivate func beforePut(_ key: StorageKey, bytes: Int?) throws {
        try locked {
            if crashedFlag { throw SimulatedCrash(location: inner.location) }
            putCount += 1
            if let e = allPutsFail { throw FileError.write(path: name(key), errno: e) }
            if let f = putFailure, f.number == putCount {
                putFailure = nil
                throw FileError.write(path: name(key), errno: f.errno)
            }
            if let bytes { try consumeSpace(bytes, key) }
        }
    }

    fileprivate func afterPut() {
        locked { if let n = crashPut, n == putCount { crashedFlag = true } }
    }

    /// Called under `lock`.
    private func consumeSpace(_ count: Int, _ key: StorageKey) throws {
        guard let free = space else { return }
        if Int64(count) > free {
            space = 0
            throw FileError.write(path: name(key), errno: ENOSPC)
        }
        space = free - Int64(count)
    }

    fileprivate func write(_ count: Int, to key: StorageKey) throws {
        try locked {
            if crashedFlag { throw SimulatedCrash(location: inner.location) }
            try consumeSpace(count, key)
        }
    }

    fileprivate func readFault(_ key: StorageKey, _ stage: ReadStage, reading bytes: Range<Int64>? = nil) -> Int32? {
        locked {
            readFailures.first { rule in
                guard key.isWithin(rule.prefix) && rule.stage == stage else { return false }
                guard let range = rule.range, let bytes else { return true }
                return range.overlaps(bytes)
            }?.errno
        }
    }

    fileprivate func readLimit(_ key: StorageKey) -> Int64? { locked { shortReads[key] } }

    fileprivate func flips(_ key: StorageKey) -> [(offset: Int64, mask: UInt8)] {
        locked { bitFlips.filter { $0.key == key }.map { ($0.offset, $0.mask) } }
    }

    // MARK: - StorageBackend

    public var location: String { inner.location }
    public var defaultCatalogPath: String? { inner.defaultCatalogPath }

    public func prepare() throws {
        try checkAlive()
        try inner.prepare()
    }

    public func open(_ key: StorageKey) throws -> ByteSource {
        try checkAlive()
        if let e = readFault(key, .open) { throw FileError.open(path: name(key), errno: e) }
        return FaultySource(try inner.open(key), key: key, backend: self)
    }

    public func size(of key: StorageKey) throws -> Int64? {
        try checkAlive()
        if let e = readFault(key, .open) { throw FileError.open(path: name(key), errno: e) }
        return try inner.size(of: key)
    }

    @discardableResult
    public func put(_ key: StorageKey, _ bytes: [UInt8], mode: PutMode) throws -> PutOutcome {
        try beforePut(key, bytes: bytes.count)
        let outcome = try inner.put(key, bytes, mode: mode)
        afterPut()
        return outcome
    }

    public func makeWriter(for key: StorageKey) throws -> ObjectWriter {
        try checkAlive()
        return FaultyWriter(try inner.makeWriter(for: key), backend: self)
    }

    public func list(under prefix: StorageKey) throws -> [StorageKey] {
        try checkAlive()
        return try inner.list(under: prefix)
    }

    public func children(of prefix: StorageKey?) throws -> [String] {
        try checkAlive()
        return try inner.children(of: prefix)
    }

    public func delete(_ key: StorageKey) throws {
        try locked {
            if crashedFlag { throw SimulatedCrash(location: inner.location) }
            deleteCount += 1
            if let f = deleteFailure, f.number == deleteCount {
                deleteFailure = nil
                throw RepositoryError.io(path: name(key), operation: "remove", errno: f.errno)
            }
        }
        try inner.delete(key)
        locked { if let n = crashDelete, n == deleteCount { crashedFlag = true } }
    }

    public func changeToken(under prefix: StorageKey) -> String? {
        crashed ? nil : inner.changeToken(under: prefix)
    }

    public func removeLeftovers(warn: (String) -> Void) throws {
        try checkAlive()
        try inner.removeLeftovers(warn: warn)
    }

    public func acquireLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                             warn: (String) -> Void) throws -> StorageLease {
        try checkAlive()
        let lease = try inner.acquireLease(name, command: command, duration: duration, timeout: timeout, warn: warn)
        return FaultyLease(lease, backend: self)
    }

    public func leaseHolder(_ name: String) -> LockHolder? {
        inner.leaseHolder(name)
    }
}

/// What a `FaultyBackend` throws once its simulated crash happened: the process is taken as
/// killed, so nothing after it (cleanup included) reaches storage.
public struct SimulatedCrash: Error, CustomStringConvertible, ExitStatusProviding {
    public let location: String
    public var description: String { "simulated crash: \(location) is no longer written or read by this process" }
    public var exitStatus: ExitStatus { .failure }
}

/// A source that fails, stops short or flips bits as its `FaultyBackend`'s rules say.
final class FaultySource: ByteSource {
    private let inner: ByteSource
    private let key: StorageKey
    private let backend: FaultyBackend

    init(_ inner: ByteSource, key: StorageKey, backend: FaultyBackend) {
        self.inner = inner
        self.key = key
        self.backend = backend
    }

    var size: Int64 { inner.size }
    var bytesRead: Int64 { inner.bytesRead }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try backend.checkAlive()
        if let e = backend.readFault(key, .read, reading: offset..<(offset + Int64(max(count, 1)))) {
            throw FileError.read(path: backend.name(key), errno: e)
        }
        if let limit = backend.readLimit(key), offset + Int64(count) > limit {
            throw FileError.truncated(path: backend.name(key), offset: offset, wanted: count)
        }
        var bytes = try inner.read(at: offset, count: count)
        for flip in backend.flips(key) where flip.offset >= offset && flip.offset < offset + Int64(bytes.count) {
            bytes[Int(flip.offset - offset)] ^= flip.mask
        }
        return bytes
    }
}

/// A streaming put that runs out of space or dies as its `FaultyBackend`'s rules say.
final class FaultyWriter: ObjectWriter, @unchecked Sendable {
    private let inner: ObjectWriter
    private let backend: FaultyBackend

    init(_ inner: ObjectWriter, backend: FaultyBackend) {
        self.inner = inner
        self.backend = backend
    }

    var key: StorageKey { inner.key }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try backend.write(bytes.count, to: key)
        try inner.write(bytes)
    }

    func markBoundary() throws {
        try backend.checkAlive()
        try inner.markBoundary()
    }

    func finish() throws {
        try backend.checkAlive()
        try inner.finish()
    }

    func commit(mode: PutMode) throws -> PutOutcome {
        do {
            try backend.beforePut(key, bytes: nil)
        } catch {
            if !(error is SimulatedCrash) { inner.abort() }
            throw error
        }
        let outcome = try inner.commit(mode: mode)
        backend.afterPut()
        return outcome
    }

    func abort() {
        // A killed process cleans nothing up.
        if !backend.crashed { inner.abort() }
    }
}

/// A lease that a simulated crash leaves held (its record stays until it expires or is broken).
final class FaultyLease: StorageLease, @unchecked Sendable {
    private let inner: StorageLease
    private let backend: FaultyBackend

    init(_ inner: StorageLease, backend: FaultyBackend) {
        self.inner = inner
        self.backend = backend
    }

    var holder: LockHolder { inner.holder }

    func renew() throws {
        try backend.checkAlive()
        try inner.renew()
    }

    func recordHolder() throws {
        try backend.checkAlive()
        try inner.recordHolder()
    }

    func release() {
        if backend.crashed {
            // Kept alive for good: the inner lease releases itself when it goes away.
            _ = Unmanaged<AnyObject>.passRetained(inner)
        } else {
            inner.release()
        }
    }
}
