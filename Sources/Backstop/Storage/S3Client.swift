import AsyncHTTPClient
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import NIOCore
import NIOHTTP1

/// Where an S3 repository is and how to talk to it: everything `S3Backend` needs, and nothing
/// read from the environment (see `RepositoryAddress` for that).
public struct S3Configuration: Sendable {
    public enum Addressing: String, Sendable {
        /// `http://host/BUCKET/KEY`: MinIO, Garage, Ceph RGW, local servers.
        case path
        /// `https://BUCKET.host/KEY`: AWS S3.
        case virtualHost = "virtual"
    }

    public var bucket: String
    /// Key prefix inside the bucket, without leading or trailing `/` ("" for the bucket's top).
    public var prefix: String
    /// `scheme://host[:port]`, e.g. `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`.
    public var endpoint: URL
    public var region: String
    public var credentials: SigV4.Credentials
    public var addressing: Addressing
    /// How many requests may run at once (the connection pool's size).
    public var maxConnections: Int = 8
    /// Attempts per request before giving up (exit 69), with exponential backoff and full jitter.
    public var maxAttempts: Int = 6
    public var baseDelay: TimeInterval = 0.2
    public var maxDelay: TimeInterval = 8
    /// Keys per ListObjectsV2 page (S3's maximum is 1000; tests make pages small).
    public var listPageSize: Int = 1000
    /// Whether `If-None-Match: *` is honoured; nil: probe on the first create-only put.
    public var conditionalWrites: Bool?
    /// Where this host keeps catalogs of remote repositories (`<dir>/<repository id>/catalog.sqlite`).
    public var cacheDirectory: String?

    public init(bucket: String, prefix: String, endpoint: URL, region: String, credentials: SigV4.Credentials,
                addressing: Addressing, cacheDirectory: String? = nil) {
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.addressing = addressing
        self.cacheDirectory = cacheDirectory
    }

    /// `s3://bucket/prefix`, for messages.
    public var url: String { "s3://\(bucket)\(prefix.isEmpty ? "" : "/" + prefix)" }
}

/// A body for `S3Client.send`: nothing, bytes, or a local file streamed from disk.
enum S3Body: Sendable {
    case none
    case bytes([UInt8], sha256: String)
    case file(path: String, size: Int64, sha256: String)

    var sha256: String {
        switch self {
        case .none: return SigV4.emptyPayloadHash
        case let .bytes(_, h), let .file(_, _, h): return h
        }
    }
}

struct S3Response {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    /// How many times the request was sent (1 unless retried): a create-only put answered 412
    /// after a retry may have been stored by its own earlier, unanswered attempt.
    var attempts = 1

    /// The `<Code>` and `<Message>` of an S3 error body (empty when there is none).
    var error: (code: String, message: String) {
        let doc = S3XML.parse(body)
        return (doc.first("Error/Code") ?? "", doc.first("Error/Message") ?? "")
    }
}

/// Signed HTTP requests to one bucket, retried as S3 asks, run synchronously on the calling
/// thread (the `StorageBackend` protocol is synchronous). One `HTTPClient` per client: its
/// connection pool bounds the number of requests in flight.
final class S3Client: @unchecked Sendable {
    let config: S3Configuration
    private let http: HTTPClient
    private let signer: SigV4
    private let counterLock = NSLock()
    private var counts: [String: Int] = [:]
    private var isShutDown = false

    init(_ config: S3Configuration) {
        Self.processTotals.installExitReport()
        self.config = config
        var httpConfig = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(3), read: .seconds(60)),
            connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: config.maxConnections))
        httpConfig.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfig)
        signer = SigV4(credentials: config.credentials, region: config.region)
    }

    deinit { shutdown() }

    func shutdown() {
        counterLock.lock()
        let first = !isShutDown
        isShutDown = true
        counterLock.unlock()
        if first { try? http.syncShutdown() }
    }

    var endpointDescription: String { "\(config.endpoint.absoluteString) (bucket \(config.bucket))" }

    /// Requests sent so far, by method (retries count).
    func requestCounts() -> [String: Int] {
        counterLock.lock()
        defer { counterLock.unlock() }
        return counts
    }

    /// The object key in the bucket for a repository key ("" for the repository's top).
    func objectKey(_ key: String) -> String {
        if config.prefix.isEmpty { return key }
        return key.isEmpty ? config.prefix : config.prefix + "/" + key
    }

    /// Host header value and path for `objectKey` (nil: the bucket itself).
    private func target(_ objectKey: String?) -> (host: String, path: String) {
        let url = config.endpoint
        var host = url.host ?? "localhost"
        if let port = url.port, !((url.scheme == "http" && port == 80) || (url.scheme == "https" && port == 443)) {
            host += ":\(port)"
        }
        let basePath = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        switch config.addressing {
        case .path:
            return (host, basePath + "/" + config.bucket + (objectKey.map { "/" + $0 } ?? "/"))
        case .virtualHost:
            return (config.bucket + "." + host, basePath + "/" + (objectKey ?? ""))
        }
    }

    /// Sends one request, retrying transport failures, 5xx, 429 and `SlowDown`/`RequestTimeout`
    /// with exponential backoff and full jitter; every other answer is returned as it is.
    func send(_ method: HTTPMethod, objectKey: String?, query: [(String, String)] = [], headers extra: [(String, String)] = [],
              body: S3Body = .none, interruptible: Bool = true, operation: @autoclosure () -> String) throws -> S3Response {
        var lastError = ""
        for attempt in 0..<max(1, config.maxAttempts) {
            if interruptible { try Interruption.check() }
            if attempt > 0 {
                let cap = min(config.maxDelay, config.baseDelay * pow(2, Double(attempt - 1)))
                usleep(UInt32(Double.random(in: 0...cap) * 1_000_000))
                if interruptible { try Interruption.check() }
            }
            counterLock.lock()
            counts[method.rawValue, default: 0] += 1
            counterLock.unlock()
            Self.processTotals.add(method.rawValue)
            do {
                let response = try sendOnce(method, objectKey: objectKey, query: query, headers: extra, body: body)
                let status = response.status
                if status >= 500 || status == 429 {
                    let e = response.error
                    lastError = "HTTP \(status)\(e.code.isEmpty ? "" : " \(e.code)")\(e.message.isEmpty ? "" : ": \(e.message)")"
                    continue
                }
                if status == 400 || status == 503 {
                    let code = response.error.code
                    if code == "SlowDown" || code == "RequestTimeout" { lastError = "HTTP \(status) \(code)"; continue }
                }
                var answered = response
                answered.attempts = attempt + 1
                return answered
            } catch let error as Interrupted {
                throw error
            } catch {
                lastError = Self.describe(error)
            }
        }
        throw S3Error.unavailable(endpoint: endpointDescription, operation: operation(), attempts: max(1, config.maxAttempts), lastError: lastError)
    }

    static func describe(_ error: Error) -> String {
        let text = String(describing: error)
        if let e = error as? HTTPClientError {
            if e == .connectTimeout { return "connection timed out" }
            if e == .readTimeout { return "read timed out" }
            if e == .remoteConnectionClosed { return "the connection was reset by the server" }
        }
        if text.contains("ECONNREFUSED") || text.contains("connection refused") || text.contains("Connection refused") { return "connection refused (\(text))" }
        if text.contains("ECONNRESET") { return "the connection was reset (\(text))" }
        return text
    }

    private func sendOnce(_ method: HTTPMethod, objectKey: String?, query: [(String, String)], headers extra: [(String, String)],
                          body: S3Body) throws -> S3Response {
        let (host, path) = target(objectKey)
        var signed = SigV4.Request(method: method.rawValue, path: path, query: query, headers: [("host", host)] + extra,
                                   payloadHash: body.sha256)
        signer.sign(&signed)
        let queryText = SigV4.canonicalQuery(query)
        var urlText = "\(config.endpoint.scheme ?? "https")://\(host)\(SigV4.uriEncode(path, keepSlash: true))"
        if !queryText.isEmpty { urlText += "?" + queryText }
        var request = try HTTPClient.Request(url: urlText, method: method)
        for (name, value) in signed.headers { request.headers.replaceOrAdd(name: name, value: value) }
        switch body {
        case .none:
            if method == .PUT || method == .POST { request.body = .bytes([UInt8]()) }
        case let .bytes(bytes, _):
            request.body = .bytes(bytes)
        case let .file(filePath, size, _):
            request.body = .stream(contentLength: size) { writer in Self.streamFile(filePath, size: size, to: writer) }
        }
        let response = try http.execute(request: request, deadline: .now() + .seconds(300)).wait()
        var bytes: [UInt8] = []
        if let buffer = response.body { bytes = Array(buffer.readableBytesView) }
        return S3Response(status: Int(response.status.code), headers: response.headers, body: bytes)
    }

    /// Writes a local file to a request body in 1 MiB chunks, each after the last was taken.
    private static func streamFile(_ path: String, size: Int64, to writer: HTTPClient.Body.StreamWriter) -> EventLoopFuture<Void> {
        let eventLoop = HTTPClient.defaultEventLoopGroup.next()
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return eventLoop.makeFailedFuture(FileError.open(path: path, errno: errno))
        }
        let box = UncheckedBox(value: handle)
        @Sendable func next() -> EventLoopFuture<Void> {
            let chunk: Data
            do { chunk = try box.value.read(upToCount: 1 << 20) ?? Data() } catch {
                try? box.value.close()
                return eventLoop.makeFailedFuture(error)
            }
            if chunk.isEmpty {
                try? box.value.close()
                return eventLoop.makeSucceededFuture(())
            }
            return writer.write(.byteBuffer(ByteBuffer(bytes: chunk))).flatMap { next() }
        }
        return next()
    }
}

extension S3Client {
    /// Requests of every client of this process, by method (and `GET <top>` for object GETs by
    /// the key's first component). With `BACKSTOP_S3_REQUEST_COUNTS=FILE` in the environment,
    /// they are appended to FILE as one JSON line when the process exits (for the benchmark,
    /// which counts the GETs of a restore run by the CLI).
    static let processTotals = RequestTotals()

    final class RequestTotals: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [String: Int] = [:]
        private var installed = false

        func add(_ name: String) {
            lock.lock()
            counts[name, default: 0] += 1
            lock.unlock()
        }

        func snapshot() -> [String: Int] {
            lock.lock()
            defer { lock.unlock() }
            return counts
        }

        func installExitReport() {
            lock.lock()
            defer { lock.unlock() }
            guard !installed, let file = ProcessInfo.processInfo.environment["BACKSTOP_S3_REQUEST_COUNTS"], !file.isEmpty else { return }
            installed = true
            atexit {
                let counts = S3Client.processTotals.snapshot()
                guard let data = try? JSONSerialization.data(withJSONObject: counts, options: [.sortedKeys]),
                      let path = ProcessInfo.processInfo.environment["BACKSTOP_S3_REQUEST_COUNTS"],
                      let handle = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil)
                else { return }
                handle.seekToEndOfFile()
                handle.write(data + Data("\n".utf8))
                try? handle.close()
            }
        }
    }
}

/// The few things read from S3's XML answers: each element's text by its path from the root
/// (`ListBucketResult/Contents/Key`), in document order.
struct S3XML {
    var items: [(path: String, text: String)] = []

    func all(_ path: String) -> [String] { items.filter { $0.path == path }.map(\.text) }
    func first(_ path: String) -> String? { items.first { $0.path == path }?.text }

    static func parse(_ bytes: [UInt8]) -> S3XML {
        guard !bytes.isEmpty else { return S3XML() }
        let parser = XMLParser(data: Data(bytes))
        let delegate = Collector()
        parser.delegate = delegate
        _ = parser.parse()
        return S3XML(items: delegate.items)
    }

    private final class Collector: NSObject, XMLParserDelegate {
        var stack: [String] = []
        var text = ""
        var items: [(path: String, text: String)] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            stack.append(name)
            text = ""
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            items.append((stack.joined(separator: "/"), text))
            stack.removeLast()
            text = ""
        }
    }
}
