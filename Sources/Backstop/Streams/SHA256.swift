import CCrypto
import Foundation

/// A SHA-256 digest: 32 bytes, written as 64 lowercase hex characters.
public struct SHA256Digest: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "a SHA-256 digest has 32 bytes")
        self.bytes = bytes
    }

    /// Parses 64 hex characters (either case); nil for anything else.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 {
            guard let hi = Self.nibble(utf8[2 * i]), let lo = Self.nibble(utf8[2 * i + 1]) else { return nil }
            out[i] = hi << 4 | lo
        }
        bytes = out
    }

    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }

    public static func < (a: SHA256Digest, b: SHA256Digest) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let digest = SHA256Digest(hex: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a SHA-256 digest: \(text)")
        }
        self = digest
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Errors from libcrypto.
public enum CryptoError: Error, CustomStringConvertible, ExitStatusProviding {
    case failed(operation: String, reason: String)

    public var description: String {
        switch self {
        case let .failed(operation, reason): return "OpenSSL \(operation) failed: \(reason)"
        }
    }

    /// libcrypto failing is nothing the data or the disk did: unexpected (1).
    public var exitStatus: ExitStatus { .failure }
}

/// Incremental SHA-256 through OpenSSL's EVP interface (which uses the CPU's SHA instructions).
///
/// Owns an `EVP_MD_CTX`; use it from one thread at a time.
public final class SHA256Hasher {
    private let context: OpaquePointer

    /// libcrypto set up once, before its first use, without its exit-time cleanup (see the shim).
    private static let initialized: Bool = backstop_crypto_init_without_atexit() == 1

    public init() {
        _ = Self.initialized
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        context = ctx
        Self.check(EVP_DigestInit_ex(ctx, EVP_sha256(), nil), "EVP_DigestInit_ex")
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        Self.check(EVP_DigestUpdate(context, bytes.baseAddress, bytes.count), "EVP_DigestUpdate")
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Returns the digest and resets the hasher for reuse.
    public func finalize() -> SHA256Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        Self.check(EVP_DigestFinal_ex(context, &out, &length), "EVP_DigestFinal_ex")
        precondition(length == 32)
        Self.check(EVP_DigestInit_ex(context, EVP_sha256(), nil), "EVP_DigestInit_ex")
        return SHA256Digest(bytes: out)
    }

    public static func digest(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        let h = SHA256Hasher()
        h.update(bytes)
        return h.finalize()
    }

    public static func digest(_ bytes: [UInt8]) -> SHA256Digest {
        bytes.withUnsafeBytes { digest($0) }
    }

    /// EVP digest calls fail only on programmer error or allocation failure: neither is recoverable.
    private static func check(_ result: Int32, _ operation: String) {
        if result != 1 {
            let code = ERR_get_error()
            var buffer = [CChar](repeating: 0, count: 256)
            buffer.withUnsafeMutableBufferPointer { ERR_error_string_n(code, $0.baseAddress, $0.count) }
            fatalError("\(operation) failed: \(String(nulTerminated: buffer))")
        }
    }
}

/// Hashes the bytes that pass through on their way downstream (if any), and counts them.
public final class HashingSink: ByteSink {
    private let hasher = SHA256Hasher()
    private let downstream: ByteSink?
    public private(set) var count: Int64 = 0
    public private(set) var digest: SHA256Digest?

    public init(_ downstream: ByteSink? = nil) {
        self.downstream = downstream
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        hasher.update(bytes)
        count += Int64(bytes.count)
        try downstream?.write(bytes)
    }

    public func markBoundary() throws {
        try downstream?.markBoundary()
    }

    public func finish() throws {
        finishDigest()
        try downstream?.finish()
    }

    /// Computes `digest` without finishing the downstream sink, which carries on.
    public func finishDigest() {
        digest = hasher.finalize()
    }
}

/// The OpenSSL libcrypto linked into this process, as it reports itself ("OpenSSL 3.0.11 19 Sep 2023").
public enum OpenSSLLibrary {
    public static var version: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }
}
