import Foundation
import NIOHTTP1

/// A repository in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage), under a key
/// prefix: `s3://BUCKET/PREFIX`.
///
/// - Reads: `open` fetches the first 4 MiB with one ranged GET (a frame is smaller: one request),
///   later reads fetch what they ask for (ranged GETs) with a little read-ahead.
/// - Writes: one PUT per object, create-only with `If-None-Match: *` (412: already there). A
///   store that ignores the header (found by a probe at the first create-only put) gets a HEAD
///   first instead: content-addressed objects have identical content, so a race is harmless.
///   `makeWriter` buffers to a temporary file, hashed as it is written, then streams one PUT: no
///   object of a repository comes near S3's 5 GiB single-PUT limit (frames are a few MiB; the
///   entry list of 50 million files would be), so there is no multipart upload.
/// - Leases: objects `locks/<name>/<x|s>-<host>-<pid>-<random>.json` holding a `LockHolder`
///   (exclusive or shared), taken by write-then-relist (restic's method: correct whether or not
///   conditional writes work), renewed by rewriting, broken by deleting once expired.
/// - No change token: every open lists `snapshots/` (and `events/`, `verifications/`).
public final class S3Backend: StorageBackend, @unchecked Sendable {
    let client: S3Client
    public var configuration: S3Configuration { client.config }
    private let probeLock = NSLock()
    private var conditional: Bool?

    public init(_ configuration: S3Configuration) {
        client = S3Client(configuration)
        conditional = configuration.conditionalWrites
    }

    /// Closes the connections; the backend must not be used after.
    public func close() { client.shutdown() }

    public var location: String { configuration.url }

    public var defaultCatalogPath: String? { nil }

    public var catalogCacheDirectory: String? { configuration.cacheDirectory }

    /// Requests sent so far, by HTTP method (retries included): tests and the bench count them.
    public var requestCounts: [String: Int] { client.requestCounts() }

    private let countLock = NSLock()
    private var objectGETs: [String: Int] = [:]

    /// Object GETs (ranged or whole, retries not counted twice) of keys whose first component is
    /// `top` ("frames", "snapshots"): a partial restore fetches only its frames.
    public func objectGETs(under top: String) -> Int {
        countLock.lock()
        defer { countLock.unlock() }
        return objectGETs[top, default: 0]
    }

    /// Checks the bucket is there and ours to use (a clear 69 or 77 before anything is written).
    public func prepare() throws {
        _ = try listPage(prefix: client.objectKey(""), delimiter: nil, token: nil, maxKeys: 1, operation: "list")
    }

    // MARK: - Reading

    public func open(_ key: StorageKey) throws -> ByteSource {
        try S3ByteSource(backend: self, key: key)
    }

    public func size(of key: StorageKey) throws -> Int64? {
        let response = try client.send(.HEAD, objectKey: client.objectKey(key.rawValue), operation: "look up \(key) in \(location)")
        switch response.status {
        case 200:
            guard let length = response.headers.first(name: "content-length").flatMap(Int64.init) else {
                throw S3Error.badResponse(endpoint: client.endpointDescription, operation: "look up \(key)", reason: "no Content-Length")
            }
            return length
        case 404:
            // A HEAD answer has no body: whether the bucket itself is missing, only a listing says.
            if key == RepositoryLayout.config { try prepare() }
            return nil
        default:
            throw failure(response, operation: "look up \(key) in")
        }
    }

    private func existingSize(_ key: StorageKey) throws -> Int64 {
        guard let size = try size(of: key) else { throw StorageError.notFound(location: location, key: key) }
        return size
    }

    /// Bytes `offset..<offset+count` of `key` (the whole object when `count` is nil); the object's
    /// total size with them.
    func get(_ key: StorageKey, offset: Int64, count: Int?) throws -> (bytes: [UInt8], total: Int64) {
        var headers: [(String, String)] = []
        if let count {
            if count == 0 { return ([], try existingSize(key)) }
            headers.append(("range", "bytes=\(offset)-\(offset + Int64(count) - 1)"))
        }
        countLock.lock()
        objectGETs[key.components[0], default: 0] += 1
        countLock.unlock()
        S3Client.processTotals.add("GET \(key.components[0])")
        let response = try client.send(.GET, objectKey: client.objectKey(key.rawValue), headers: headers, operation: "read \(key) in \(location)")
        switch response.status {
        case 200:
            let total = Int64(response.body.count)
            if let count {
                // A server that ignores Range sends the whole object.
                let lo = min(Int(offset), response.body.count)
                return (Array(response.body[lo..<min(lo + count, response.body.count)]), total)
            }
            return (response.body, total)
        case 206:
            let range = response.headers.first(name: "content-range") ?? ""
            guard let slash = range.lastIndex(of: "/"), let total = Int64(range[range.index(after: slash)...]) else {
                throw S3Error.badResponse(endpoint: client.endpointDescription, operation: "read \(key)", reason: "Content-Range \(range)")
            }
            return (response.body, total)
        case 416:
            // A range starting at or after the end: an empty object, or a short one.
            return ([], try existingSize(key))
        case 404:
            if response.error.code == "NoSuchBucket" { throw S3Error.noSuchBucket(endpoint: client.endpointDescription, bucket: configuration.bucket) }
            throw StorageError.notFound(location: location, key: key)
        default:
            throw failure(response, operation: "read \(key) in")
        }
    }

    // MARK: - Writing

    @discardableResult
    public func put(_ key: StorageKey, _ bytes: [UInt8], mode: PutMode) throws -> PutOutcome {
        try put(key, body: .bytes(bytes, sha256: SHA256Hasher.digest(bytes).hex), mode: mode)
    }

    func put(_ key: StorageKey, body: S3Body, mode: PutMode) throws -> PutOutcome {
        var headers: [(String, String)] = []
        if mode == .createOnly {
            if try conditionalWritesHonoured() {
                headers.append(("if-none-match", "*"))
            } else if try size(of: key) != nil {
                return .alreadyPresent
            }
        }
        let response = try client.send(.PUT, objectKey: client.objectKey(key.rawValue), headers: headers, body: body,
                                       operation: "write \(key) in \(location)")
        switch response.status {
        case 200, 201, 204: return .stored
        // 412: there; 409 ConditionalRequestConflict: another put of the key is under way (the
        // same content, for the content-addressed keys create-only is used for).
        // After a retry, the object there may be this put's own earlier attempt, stored but
        // unanswered (a timeout under load, a reset): the same bytes make it ours.
        case 412 where mode == .createOnly, 409 where mode == .createOnly && response.error.code == "ConditionalRequestConflict":
            if response.attempts > 1, try storedContentDigest(key) == body.sha256 { return .stored }
            return .alreadyPresent
        default: throw failure(response, operation: "write \(key) in")
        }
    }

    /// The SHA-256 (hex) of the object at `key`, or nil when there is none.
    private func storedContentDigest(_ key: StorageKey) throws -> String? {
        let response = try client.send(.GET, objectKey: client.objectKey(key.rawValue), operation: "read \(key) in \(location)")
        guard response.status == 200 else { return nil }
        return SHA256Hasher.digest(response.body).hex
    }

        /// Whether the store honours `If-None-Match: *`: probed once per backend, by putting a
    /// probe object twice (a second put that succeeds means the header was ignored).
    public func conditionalWritesHonoured() throws -> Bool {
        probeLock.lock()
        defer { probeLock.unlock() }
        if let conditional { return conditional }
        let key = StorageKey("locks", "probe-\(ProcessIdentity.hostName.isEmpty ? "host" : ProcessIdentity.hostName)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let objectKey = client.objectKey(key.rawValue)
        let bytes = Array("probe of If-None-Match: *\n".utf8)
        var honoured = false
        for attempt in 0..<2 {
            let response = try client.send(.PUT, objectKey: objectKey, headers: [("if-none-match", "*")],
                                           body: .bytes(bytes, sha256: SHA256Hasher.digest(bytes).hex), operation: "write \(key) in \(location)")
            if attempt == 1 && response.status == 412 { honoured = true; break }
            guard (200..<300).contains(response.status) else { throw failure(response, operation: "write \(key) in") }
        }
        _ = try? client.send(.DELETE, objectKey: objectKey, operation: "remove \(key) from \(location)")
        conditional = honoured
        return honoured
    }

    public func makeWriter(for key: StorageKey) throws -> ObjectWriter {
        try S3ObjectWriter(key: key, backend: self)
    }

    public func delete(_ key: StorageKey) throws {
        try Interruption.check()
        let response = try client.send(.DELETE, objectKey: client.objectKey(key.rawValue), operation: "remove \(key) from \(location)")
        guard (200..<300).contains(response.status) || response.status == 404 else { throw failure(response, operation: "remove \(key) from") }
    }

    // MARK: - Listing

    struct Page {
        var keys: [String] = []
        var prefixes: [String] = []
        var next: String?
    }

    func listPage(prefix: String, delimiter: String?, token: String?, maxKeys: Int? = nil, operation: String) throws -> Page {
        var query = [("list-type", "2"), ("max-keys", "\(maxKeys ?? configuration.listPageSize)")]
        if !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let delimiter { query.append(("delimiter", delimiter)) }
        if let token { query.append(("continuation-token", token)) }
        let response = try client.send(.GET, objectKey: nil, query: query, operation: "\(operation) \(location)")
        guard response.status == 200 else {
            if response.status == 404 && (response.error.code == "NoSuchBucket" || response.error.code.isEmpty) {
                throw S3Error.noSuchBucket(endpoint: client.endpointDescription, bucket: configuration.bucket)
            }
            throw failure(response, operation: "\(operation)")
        }
        let doc = S3XML.parse(response.body)
        var page = Page(keys: doc.all("ListBucketResult/Contents/Key"), prefixes: doc.all("ListBucketResult/CommonPrefixes/Prefix"))
        if doc.first("ListBucketResult/IsTruncated") == "true" {
            guard let next = doc.first("ListBucketResult/NextContinuationToken"), !next.isEmpty else {
                throw S3Error.badResponse(endpoint: client.endpointDescription, operation: "list \(location)", reason: "a truncated listing without NextContinuationToken")
            }
            page.next = next
        }
        return page
    }

    /// Every object key and common prefix below `prefix` (a repository key, nil for the top),
    /// relative to the repository, over all pages.
    private func listAll(_ prefix: StorageKey?, delimiter: String?) throws -> (keys: [String], prefixes: [String]) {
        let root = client.objectKey("")
        let base = root.isEmpty ? "" : root + "/"
        let full = base + (prefix.map { $0.rawValue + "/" } ?? "")
        var keys: [String] = [], prefixes: [String] = []
        var token: String?
        repeat {
            let page = try listPage(prefix: full, delimiter: delimiter, token: token, operation: "list")
            keys += page.keys.filter { $0.hasPrefix(base) }.map { String($0.dropFirst(base.count)) }
            prefixes += page.prefixes.filter { $0.hasPrefix(base) }.map { String($0.dropFirst(base.count)) }
            token = page.next
        } while token != nil
        return (keys, prefixes)
    }

    public func list(under prefix: StorageKey) throws -> [StorageKey] {
        try listAll(prefix, delimiter: nil).keys.compactMap(StorageKey.init(validating:)).sorted()
    }

    public func children(of prefix: StorageKey?) throws -> [String] {
        let (keys, prefixes) = try listAll(prefix, delimiter: "/")
        let depth = prefix?.components.count ?? 0
        var names = Set<String>()
        for k in keys + prefixes {
            let parts = k.split(separator: "/", omittingEmptySubsequences: true)
            if parts.count > depth { names.insert(String(parts[depth])) }
        }
        return names.sorted()
    }

    public func changeToken(under prefix: StorageKey) -> String? { nil }

    public func removeLeftovers(warn: (String) -> Void) throws {}

    // MARK: - Leases

    static let locks = StorageKey("locks")

    public func acquireLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                             warn: (String) -> Void) throws -> StorageLease {
        try lease(name, shared: false, command: command, duration: duration, timeout: timeout, warn: warn)
    }

    public func acquireSharedLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                                   warn: (String) -> Void) throws -> StorageLease {
        try lease(name, shared: true, command: command, duration: duration, timeout: timeout, warn: warn)
    }

    /// Shared holders' objects are named `s-…`, exclusive ones `x-…` (any other name, e.g. of
    /// a hand-made lease, counts as exclusive).
    static func isSharedLeaseKey(_ key: StorageKey) -> Bool { key.name.hasPrefix("s-") }

    private func lease(_ name: String, shared: Bool, command: String, duration: TimeInterval, timeout: TimeInterval,
                       warn: (String) -> Void) throws -> StorageLease {
        let me = LockHolder.current(command: command, duration: duration)
        let folder = Self.locks.appending(name)
        let mine = folder.appending("\(shared ? "s" : "x")-\(Self.safe(me.host))-\(me.pid)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16)).json")
        // Who keeps us out: anyone, for an exclusive lease; exclusive holders, for a shared one.
        func blockers() throws -> [(key: StorageKey, holder: LockHolder)] {
            try liveHolders(folder, except: mine, me: me, warn: warn).filter { !shared || !Self.isSharedLeaseKey($0.key) }
        }
        let start = Date()
        while true {
            try Interruption.check()
            var others = try blockers()
            if others.isEmpty {
                try put(mine, Array(try Timestamp.jsonEncoder().encode(me)), mode: .replace)
                // Relist: anyone who wrote at the same time is seen now, and then both step back.
                others = try blockers()
                if others.isEmpty {
                    return S3Lease(name: name, key: mine, holder: me, duration: duration, shared: shared, backend: self)
                }
                try? delete(mine)
            }
            let waited = Date().timeIntervalSince(start)
            if waited >= timeout {
                throw RepositoryError.lockHeld(path: location, holder: others[0].holder, waited: waited, lockFile: others[0].key.rawValue)
            }
            usleep(UInt32.random(in: 100_000...400_000))
        }
    }

    /// The holders of lease objects in `folder` other than `mine` that may still be working;
    /// stale ones (see `LockHolder.staleness`) are deleted, with a warning.
    private func liveHolders(_ folder: StorageKey, except mine: StorageKey?, me: LockHolder?, warn: (String) -> Void) throws
        -> [(key: StorageKey, holder: LockHolder)] {
        var live: [(key: StorageKey, holder: LockHolder)] = []
        for key in try list(under: folder) where key != mine {
            guard let bytes = try? read(key) else { continue }   // released meanwhile
            guard let holder = try? Timestamp.jsonDecoder().decode(LockHolder.self, from: Data(bytes)) else {
                live.append((key, LockHolder(host: "?", pid: 0, startedAt: Date(), command: "unreadable lease \(key)")))
                continue
            }
            if let me, let why = holder.staleness(seenBy: me) {
                try delete(key)
                warn("broke stale lease \(key) of \(location) held by \(holder): \(why)")
                continue
            }
            live.append((key, holder))
        }
        return live.sorted { $0.holder.startedAt < $1.holder.startedAt }
    }

    public func leaseHolder(_ name: String) -> LockHolder? {
        let folder = Self.locks.appending(name)
        guard let keys = try? list(under: folder) else { return nil }
        let now = Date()
        return keys.compactMap { key -> LockHolder? in
            guard let bytes = try? read(key) else { return nil }
            return try? Timestamp.jsonDecoder().decode(LockHolder.self, from: Data(bytes))
        }.filter { ($0.expiresAt ?? .distantFuture) > now }.min { $0.startedAt < $1.startedAt }
    }

    private static func safe(_ host: String) -> String {
        let s = String(host.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" })
        return s.isEmpty || s == "." || s == ".." ? "host" : s
    }

    func failure(_ response: S3Response, operation: String) -> Error {
        let (code, message) = response.error
        let op = "\(operation) \(location)"
        switch (response.status, code) {
        case (_, "NoSuchBucket"):
            return S3Error.noSuchBucket(endpoint: client.endpointDescription, bucket: configuration.bucket)
        case (401, _), (403, _), (_, "InvalidAccessKeyId"), (_, "SignatureDoesNotMatch"), (_, "AccessDenied"),
             (_, "ExpiredToken"), (_, "InvalidToken"), (_, "RequestTimeTooSkewed"), (_, "AuthorizationHeaderMalformed"):
            return S3Error.accessDenied(endpoint: client.endpointDescription, bucket: configuration.bucket, operation: op,
                                        code: code.isEmpty ? "HTTP \(response.status)" : code, message: message)
        default:
            return S3Error.rejected(endpoint: client.endpointDescription, operation: op, status: response.status,
                                    code: code, message: message)
        }
    }
}

/// An S3 object read by ranges: the first window comes with `open` (and tells the size).
final class S3ByteSource: ByteSource {
    static let firstWindow = 4 << 20
    static let readAhead = 1 << 20
    private let backend: S3Backend
    private let key: StorageKey
    let size: Int64
    private(set) var bytesRead: Int64 = 0
    private var window: (offset: Int64, bytes: [UInt8])

    init(backend: S3Backend, key: StorageKey) throws {
        self.backend = backend
        self.key = key
        let (bytes, total) = try backend.get(key, offset: 0, count: Self.firstWindow)
        size = total
        window = (0, bytes)
    }

    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try Interruption.check()
        guard offset >= 0, offset + Int64(count) <= size else {
            throw StorageError.io(location: backend.location, key: key, operation: "read \(count) bytes at offset \(offset) of",
                                  reason: "the object has \(size) bytes")
        }
        let end = offset + Int64(count)
        if offset < window.offset || end > window.offset + Int64(window.bytes.count) {
            let want = Int(min(size - offset, Int64(max(count, Self.readAhead))))
            let (bytes, _) = try backend.get(key, offset: offset, count: want)
            guard bytes.count == want else {
                throw StorageError.io(location: backend.location, key: key, operation: "read \(want) bytes at offset \(offset) of",
                                      reason: "the server sent \(bytes.count)")
            }
            window = (offset, bytes)
        }
        bytesRead += Int64(count)
        let start = Int(offset - window.offset)
        return Array(window.bytes[start..<start + count])
    }
}

/// A streaming put: bytes go to a temporary file (hashed as they come), then one PUT.
final class S3ObjectWriter: ObjectWriter, @unchecked Sendable {
    let key: StorageKey
    private let backend: S3Backend
    private let path: String
    private var file: FileHandle?
    private let hasher = SHA256Hasher()
    private var size: Int64 = 0
    private var done = false

    init(key: StorageKey, backend: S3Backend) throws {
        self.key = key
        self.backend = backend
        let dir = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(dir)/backstop-s3-put-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw FileError.open(path: dir, errno: errno) }
        path = String(nulTerminated: template)
        file = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    func write(_ buffer: UnsafeRawBufferPointer) throws {
        try Interruption.check()
        guard let file else { preconditionFailure("write after finish") }
        do { try file.write(contentsOf: buffer) } catch { throw FileError.write(path: path, errno: EIO) }
        hasher.update(buffer)
        size += Int64(buffer.count)
    }

    func markBoundary() throws {}

    func finish() throws {
        try file?.close()
        file = nil
    }

    func commit(mode: PutMode) throws -> PutOutcome {
        precondition(!done, "an object writer commits once")
        done = true
        defer { unlink(path) }
        try finish()
        return try backend.put(key, body: .file(path: path, size: size, sha256: hasher.finalize().hex), mode: mode)
    }

    func abort() {
        done = true
        try? file?.close()
        file = nil
        unlink(path)
    }

    deinit { if !done { unlink(path) } }
}

final class S3Lease: StorageLease, @unchecked Sendable {
    let name: String
    let key: StorageKey
    private(set) var holder: LockHolder
    let isShared: Bool
    private let duration: TimeInterval
    private let backend: S3Backend
    private let state = NSLock()
    private var released = false

    init(name: String, key: StorageKey, holder: LockHolder, duration: TimeInterval, shared: Bool, backend: S3Backend) {
        self.name = name
        self.key = key
        self.isShared = shared
        self.holder = holder
        self.duration = duration
        self.backend = backend
    }

    func renew() throws {
        state.lock()
        defer { state.unlock() }
        guard !released else { return }
        guard try backend.size(of: key) != nil else {
            throw StorageError.io(location: backend.location, key: key, operation: "renew lease \(name) of",
                                  reason: "it was broken by another writer after it expired")
        }
        var renewed = holder
        renewed.expiresAt = Date().addingTimeInterval(duration)
        try backend.put(key, Array(try Timestamp.jsonEncoder().encode(renewed)), mode: .replace)
        holder = renewed
    }

    func recordHolder() throws {}

    func release() {
        state.lock()
        defer { state.unlock() }
        guard !released else { return }
        released = true
        // Not interruptible: the interruption watcher releases the lease this way.
        _ = try? backend.client.send(.DELETE, objectKey: backend.client.objectKey(key.rawValue), interruptible: false,
                                     operation: "remove \(key) from \(backend.location)")
    }

    deinit { release() }
}
