import Crypto
import Foundation

/// AWS Signature Version 4 (the `Authorization` header form), for S3 requests.
///
/// The steps are AWS's: a canonical request (method, URI, sorted query, sorted lower-case
/// headers with trimmed values, signed header names, payload hash), the string to sign
/// (algorithm, time, scope, hash of the canonical request), the signing key (an HMAC chain
/// over date, region, service, `aws4_request`), and the signature (HMAC of the string to sign).
/// S3's rules: the path is encoded once and never normalized (`a/./b` is a key of its own).
public struct SigV4: Sendable {
    public struct Credentials: Sendable, Equatable {
        public var accessKeyID: String
        public var secretAccessKey: String
        public var sessionToken: String?

        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// A request to sign: the path and query unencoded (the signer encodes them).
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]
        /// Lower-case hex SHA-256 of the body (or `UNSIGNED-PAYLOAD`).
        public var payloadHash: String

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)],
                    payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    public var credentials: Credentials
    public var region: String
    public var service: String

    public init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    public static let emptyPayloadHash = hexSHA256([])

    public static func hexSHA256(_ bytes: some Sequence<UInt8>) -> String {
        hex(SHA256.hash(data: Array(bytes)))
    }

    /// `20150830T123600Z`.
    public static func amzDate(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: date)
    }

    /// RFC 3986 encoding as SigV4 wants it: everything but `A-Z a-z 0-9 - . _ ~` as `%XX`
    /// (upper-case hex), and `/` too unless `keepSlash`.
    public static func uriEncode(_ text: String, keepSlash: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// The query as it goes on the wire and into the canonical request: encoded pairs sorted
    /// by key, then value.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (uriEncode($0.0), uriEncode($0.1)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Lower-case names, sorted; values trimmed, inner runs of spaces collapsed, repeated
    /// headers joined with commas.
    static func canonicalHeaders(_ headers: [(String, String)]) -> (text: String, signed: String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let trimmed = value.trimmingCharacters(in: .whitespaces)
                .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[name.lowercased(), default: []].append(trimmed)
        }
        let names = merged.keys.sorted()
        let text = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (text, names.joined(separator: ";"))
    }

    public func canonicalRequest(_ request: Request) -> String {
        let headers = Self.canonicalHeaders(request.headers)
        return [
            request.method,
            Self.uriEncode(request.path.isEmpty ? "/" : request.path, keepSlash: true),
            Self.canonicalQuery(request.query),
            headers.text,
            headers.signed,
            request.payloadHash,
        ].joined(separator: "\n")
    }

    func scope(_ date: Date) -> String {
        "\(Self.amzDate(date).prefix(8))/\(region)/\(service)/aws4_request"
    }

    public func stringToSign(_ request: Request, date: Date) -> String {
        [
            "AWS4-HMAC-SHA256",
            Self.amzDate(date),
            scope(date),
            Self.hexSHA256(Array(canonicalRequest(request).utf8)),
        ].joined(separator: "\n")
    }

    func signingKey(_ date: Date) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key)))
        }
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [String(Self.amzDate(date).prefix(8)), region, service, "aws4_request"] { key = hmac(key, part) }
        return key
    }

    /// The `Authorization` header's value. `request.headers` must already hold `host`,
    /// `x-amz-date` (and, when used, `x-amz-security-token` and `x-amz-content-sha256`).
    public func authorization(_ request: Request, date: Date) -> String {
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign(request, date: date).utf8),
                                                                using: signingKey(date)))
        let signed = Self.canonicalHeaders(request.headers).signed
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(date)), SignedHeaders=\(signed), Signature=\(signature)"
    }

    /// Adds `x-amz-date`, `x-amz-content-sha256`, the session token when there is one, and
    /// `Authorization` to an S3 request's headers (which must hold `host`).
    public func sign(_ request: inout Request, date: Date = Date()) {
        request.headers.append(("x-amz-date", Self.amzDate(date)))
        request.headers.append(("x-amz-content-sha256", request.payloadHash))
        if let token = credentials.sessionToken { request.headers.append(("x-amz-security-token", token)) }
        request.headers.append(("Authorization", authorization(request, date: date)))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
