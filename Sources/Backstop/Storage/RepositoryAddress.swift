import Foundation

/// Where a repository is, as a user names it: a local path, or `s3://BUCKET/PREFIX`. Turns that
/// name into a backend as the CLI does (endpoint, region, credentials from flags, then the
/// environment, then `~/.aws/credentials`).
public enum RepositoryAddress: Sendable, Equatable {
    case local(path: String)
    case s3(bucket: String, prefix: String)

    /// What the environment and flags add to an `s3://` address. Nil fields come from the
    /// environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, …).
    public struct Settings: Sendable {
        public var endpoint: String?
        public var region: String?
        public var addressing: S3Configuration.Addressing?
        public var cacheDirectory: String?
        public var environment: [String: String]

        public init(endpoint: String? = nil, region: String? = nil, addressing: S3Configuration.Addressing? = nil,
                    cacheDirectory: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
            self.endpoint = endpoint
            self.region = region
            self.addressing = addressing
            self.cacheDirectory = cacheDirectory
            self.environment = environment
        }
    }

    public static func isRemote(_ text: String) -> Bool { text.lowercased().hasPrefix("s3://") }

    public init(parsing text: String) throws {
        guard Self.isRemote(text) else {
            self = .local(path: text)
            return
        }
        let rest = text.dropFirst("s3://".count)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let bucket = String(parts[0])
        guard !bucket.isEmpty else { throw S3Error.invalidAddress(text, reason: "no bucket name") }
        guard bucket.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }), bucket.count <= 63 else {
            throw S3Error.invalidAddress(text, reason: "\(bucket) is not a bucket name (lower-case letters, digits, '-', '.')")
        }
        let prefix = parts.count > 1 ? parts[1].split(separator: "/").joined(separator: "/") : ""
        if !prefix.isEmpty, StorageKey(validating: prefix) == nil {
            throw S3Error.invalidAddress(text, reason: "the prefix \(prefix) has an empty, '.' or '..' component")
        }
        self = .s3(bucket: bucket, prefix: prefix)
    }

    /// The backend for this address. A local one is `LocalBackend`; an S3 one reads endpoint,
    /// region and credentials from `settings`, then the environment, then the shared
    /// credentials file.
    public func makeBackend(_ settings: Settings = Settings()) throws -> StorageBackend {
        switch self {
        case let .local(path):
            return LocalBackend(root: path)
        case let .s3(bucket, prefix):
            return S3Backend(try s3Configuration(bucket: bucket, prefix: prefix, settings))
        }
    }

    func s3Configuration(bucket: String, prefix: String, _ settings: Settings) throws -> S3Configuration {
        let env = settings.environment
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        let region = settings.region ?? value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        let endpointText = settings.endpoint ?? value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL")
        let endpoint: URL
        let addressing: S3Configuration.Addressing
        if let endpointText {
            guard let url = URL(string: endpointText), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw S3Error.invalidAddress(endpointText, reason: "the endpoint must be an http:// or https:// URL (--s3-endpoint, AWS_ENDPOINT_URL)")
            }
            endpoint = url
            addressing = settings.addressing ?? .path
        } else {
            endpoint = URL(string: "https://s3.\(region).amazonaws.com")!
            addressing = settings.addressing ?? (bucket.contains(".") ? .path : .virtualHost)
        }
        var config = S3Configuration(bucket: bucket, prefix: prefix, endpoint: endpoint, region: region,
                                     credentials: try Self.credentials(env), addressing: addressing)
        config.cacheDirectory = settings.cacheDirectory ?? Self.defaultCacheDirectory(env)
        return config
    }

    /// `$XDG_CACHE_HOME/backstop`, else `~/.cache/backstop`.
    public static func defaultCacheDirectory(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/backstop" }
        return (env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()) + "/.cache/backstop"
    }

    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else the `AWS_PROFILE`
    /// (default `default`) section of `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`).
    public static func credentials(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> SigV4.Credentials {
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let id = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") {
            return SigV4.Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"))
        }
        let profile = value("AWS_PROFILE") ?? "default"
        let file = value("AWS_SHARED_CREDENTIALS_FILE") ?? ((value("HOME") ?? NSHomeDirectory()) + "/.aws/credentials")
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw S3Error.noCredentials(profile: profile, file: file) }
        var section = ""
        var fields: [String: String] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                continue
            }
            guard section == profile, let eq = line.firstIndex(of: "=") else { continue }
            fields[line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
        guard let id = fields["aws_access_key_id"], let secret = fields["aws_secret_access_key"] else {
            throw S3Error.noCredentials(profile: profile, file: file)
        }
        return SigV4.Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: fields["aws_session_token"])
    }
}
