import Crypto
import Foundation

/// A backend decorator that stores an encrypted repository's private objects as age files on
/// any backend, and names frames by a keyed hash.
///
/// Encrypted: every frame (`frames/…`), each snapshot's `frames.tsv` and `entries.jsonl.zst`.
/// Left readable: `backstop.json`, manifests, `SHA256SUMS`, events, verification history and
/// leases, so that listing, selection, retention and quick verification need no key.
///
/// Reads decrypt with the keyring's identities; ranged reads of an object decrypt only the
/// 64 KiB chunks they touch (`AgeDecryptingSource`). Writes encrypt to the repository's
/// recipients with one header per writer (`AgeSealer`). `size(of:)` is the plaintext size (read
/// from the object's length and its header, without a key), so callers see the same sizes as on
/// an unencrypted repository.
public final class EncryptedBackend: StorageBackend, @unchecked Sendable {
    public let base: StorageBackend
    public let encryption: RepositoryEncryption
    private let sealer: AgeSealer?
    let keyring: AgeKeyring?
    private let hashKey: SymmetricKey?
    /// The keyed-hash key's bytes (for re-wrapping it on a change of recipients).
    let hashKeyBytes: [UInt8]?
    /// Why writing is impossible, when it is (no writer key and no identity).
    private let cannotWrite: String?

    public init(base: StorageBackend, encryption: RepositoryEncryption, repositoryID: String, keys: RepositoryKeys) throws {
        self.base = base
        self.encryption = encryption
        let keyring = keys.identities.isEmpty ? nil : AgeKeyring(identities: keys.identities, expectedRecipients: encryption.isPassphrase ? ["a passphrase (scrypt)"] : encryption.recipients)
        self.keyring = keyring
        let writerKeyPath = keys.writerKeyPath ?? WriterKey.defaultPath(repositoryID: repositoryID)
        var writer = try WriterKey.read(from: writerKeyPath)
        if let w = writer, w.repository != repositoryID {
            throw AgeError.invalidKey(source: writerKeyPath, reason: "this writer key is for repository \(w.repository), not \(repositoryID)")
        }
        var hashKeyBytes = writer.flatMap { Age.unhex($0.keyedHashKey) }
        if hashKeyBytes == nil, let keyring, let wrapped = AgeBase64.decode(encryption.keyedHashKey) {
            // An identity that is no longer (or never was) a recipient can still read what was
            // encrypted to it; it just cannot write.
            var out: [UInt8] = []
            do {
                try Age.decrypt(wrapped, keyring: keyring) { out += $0 }
                hashKeyBytes = out
            } catch AgeError.noMatchingIdentity {
                hashKeyBytes = nil
            }
            writer = nil
        }
        hashKey = hashKeyBytes.map { SymmetricKey(data: $0) }
        self.hashKeyBytes = hashKeyBytes
        if encryption.isPassphrase {
            if let w = writer, let h = w.passphraseHeader.flatMap(AgeBase64.decode), let k = w.passphraseFileKey.flatMap(Age.unhex) {
                sealer = AgeSealer(header: h, fileKey: k, recipients: [])
            } else if let passphrase = keys.identities.lazy.compactMap({ (identity: AgeIdentity) -> [UInt8]? in
                if case let .scrypt(p) = identity { return p } else { return nil }
            }).first {
                sealer = try AgeSealer(recipients: [.scrypt(passphrase: passphrase, workFactor: 18)])
            } else {
                sealer = nil
            }
        } else {
            sealer = try AgeSealer(recipients: encryption.x25519Recipients())
        }
        if hashKey == nil || sealer == nil {
            cannotWrite = "writing to the encrypted repository \(base.location) needs its writer key file (\(writerKeyPath), made by `backstop init --encrypt`; or set $BACKSTOP_WRITER_KEY) or an identity (--identity FILE or $BACKSTOP_IDENTITY)"
        } else {
            cannotWrite = nil
        }
    }

    /// Whether `key` names an object stored encrypted.
    public static func isEncrypted(_ key: StorageKey) -> Bool {
        let c = key.components
        if c.first == "frames" { return true }
        // Archived binlogs and WAL hold every row written: their data objects are encrypted;
        // their records (times, positions, digests) stay readable, as manifests do.
        if c.count == 3 && c[0] == "logs" { return c[2].hasSuffix(".zst") }
        if c.count == 3 && c[0] == "snapshots" { return c[2] == "frames.tsv" || c[2] == "entries.jsonl.zst" }
        return false
    }

    /// Whether this process can decrypt (it holds an identity).
    public var canDecrypt: Bool { keyring != nil }

    private func requireKeyring() throws -> AgeKeyring {
        guard let keyring else {
            throw AgeError.noMatchingIdentity(object: "the encrypted repository \(base.location)", expected: encryption.isPassphrase ? ["a passphrase (scrypt)"] : encryption.recipients)
        }
        return keyring
    }

    private func requireSealer() throws -> AgeSealer {
        guard let sealer, cannotWrite == nil else { throw RepositoryKeyError.cannotWrite(cannotWrite ?? "") }
        return sealer
    }

    /// A frame's ID: HMAC-SHA256 of its uncompressed bytes under the keyed-hash key.
    public func frameID(of bytes: UnsafeRawBufferPointer) throws -> SHA256Digest {
        guard let hashKey else { throw RepositoryKeyError.cannotWrite(cannotWrite ?? "") }
        return SHA256Digest(bytes: Array(HMAC<SHA256>.authenticationCode(for: bytes, using: hashKey)))
    }

    /// Encrypts `plaintext` and stores it create-only; returns the size and digest of what was
    /// stored (for `SHA256SUMS`, which covers ciphertext).
    func putSealed(_ key: StorageKey, _ plaintext: [UInt8], mode: PutMode) throws -> (outcome: PutOutcome, size: Int64, sha256: SHA256Digest) {
        let sealed = try requireSealer().seal(plaintext)
        let outcome = try base.put(key, sealed, mode: mode)
        return (outcome, Int64(sealed.count), SHA256Hasher.digest(sealed))
    }

    // MARK: - StorageBackend

    public var location: String { base.location }
    public var defaultCatalogPath: String? { base.defaultCatalogPath }
    public func prepare() throws { try base.prepare() }

    public func open(_ key: StorageKey) throws -> ByteSource {
        let source = try base.open(key)
        guard Self.isEncrypted(key) else { return source }
        return try AgeDecryptingSource(source, keyring: try requireKeyring(), object: "\(key) in \(base.location)")
    }

    public func size(of key: StorageKey) throws -> Int64? {
        guard Self.isEncrypted(key) else { return try base.size(of: key) }
        guard let sealedSize = try base.size(of: key) else { return nil }
        if sealedSize == 0 { return 0 }
        let source = try base.open(key)
        var want = min(Int(sealedSize), 1024)
        while true {
            do {
                let length = try AgeHeader.parse(try source.read(at: 0, count: want)).length
                guard sealedSize - Int64(length) >= Int64(AgeStream.nonceSize) else {
                    throw AgeError.malformedHeader(object: nil, reason: "it ends before its payload nonce (truncated)")
                }
                return try AgeStream.layout(sealedLength: sealedSize - Int64(length) - Int64(AgeStream.nonceSize)).plaintextSize
            } catch is HeaderParseNeedsMore {
                guard want < Int(sealedSize) else { throw AgeError.malformedHeader(object: "\(key) in \(base.location)", reason: "it ends inside its header (truncated)") }
                want = min(Int(sealedSize), want * 4)
            } catch let error as AgeError {
                throw error.naming("\(key) in \(base.location)")
            }
        }
    }

    @discardableResult
    public func put(_ key: StorageKey, _ bytes: [UInt8], mode: PutMode) throws -> PutOutcome {
        guard Self.isEncrypted(key) else { return try base.put(key, bytes, mode: mode) }
        return try base.put(key, try requireSealer().seal(bytes), mode: mode)
    }

    public func makeWriter(for key: StorageKey) throws -> ObjectWriter {
        let writer = try base.makeWriter(for: key)
        guard Self.isEncrypted(key) else { return writer }
        let sealer: AgeSealer
        do { sealer = try requireSealer() } catch { writer.abort(); throw error }
        return EncryptingObjectWriter(writer, sealer: sealer)
    }

    public func list(under prefix: StorageKey) throws -> [StorageKey] { try base.list(under: prefix) }
    public func children(of prefix: StorageKey?) throws -> [String] { try base.children(of: prefix) }
    public func delete(_ key: StorageKey) throws { try base.delete(key) }
    public func changeToken(under prefix: StorageKey) -> String? { base.changeToken(under: prefix) }
    public func removeLeftovers(warn: (String) -> Void) throws { try base.removeLeftovers(warn: warn) }
    public func acquireLease(_ name: String, command: String, duration: TimeInterval, timeout: TimeInterval,
                             warn: (String) -> Void) throws -> StorageLease {
        try base.acquireLease(name, command: command, duration: duration, timeout: timeout, warn: warn)
    }
    public func leaseHolder(_ name: String) -> LockHolder? { base.leaseHolder(name) }
}

extension StorageBackend {
    /// The ID of a frame with these uncompressed bytes: SHA-256, or on an encrypted repository
    /// the keyed hash.
    public func frameID(of bytes: [UInt8]) throws -> SHA256Digest {
        try bytes.withUnsafeBytes { try frameID(of: $0) }
    }

    public func frameID(of bytes: UnsafeRawBufferPointer) throws -> SHA256Digest {
        if let encrypted = self as? EncryptedBackend { return try encrypted.frameID(of: bytes) }
        return SHA256Hasher.digest(bytes)
    }

    /// The backend as stored (below the encryption): what `SHA256SUMS` covers.
    public var storedObjects: StorageBackend { (self as? EncryptedBackend)?.base ?? self }
}

/// Encrypts a streaming put chunk by chunk (one 64 KiB chunk held back, so the last one can be
/// flagged), hashing what it stores.
final class EncryptingObjectWriter: ObjectWriter {
    private let downstream: ObjectWriter
    private let stored: HashingSink
    private let payloadKey: SymmetricKey
    private var pending: [UInt8] = []
    private var index = 0
    var key: StorageKey { downstream.key }

    init(_ downstream: ObjectWriter, sealer: AgeSealer) {
        self.downstream = downstream
        stored = HashingSink(downstream)
        let nonce = Age.randomBytes(AgeStream.nonceSize)
        payloadKey = AgeStream.payloadKey(fileKey: sealer.fileKey, nonce: nonce)
        pending.reserveCapacity(AgeStream.chunkSize * 2)
        header = sealer.header + nonce
    }

    private var header: [UInt8]?

    /// Size and digest of the stored (encrypted) object; valid after `finish()`.
    var storedSize: Int64 { stored.count }
    var storedDigest: SHA256Digest? { stored.digest }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let h = header {
            try stored.write(h)
            header = nil
        }
        pending.append(contentsOf: bytes)
        while pending.count > AgeStream.chunkSize {
            try sealChunk(count: AgeStream.chunkSize, last: false)
        }
    }

    private func sealChunk(count: Int, last: Bool) throws {
        let box = try pending.withUnsafeBytes {
            try ChaChaPoly.seal(UnsafeRawBufferPointer(rebasing: $0[0..<count]), using: payloadKey, nonce: AgeStream.chunkNonce(index, last: last))
        }
        try stored.write(Array(box.ciphertext) + Array(box.tag))
        pending.removeFirst(count)
        index += 1
    }

    func markBoundary() throws {}

    func finish() throws {
        if let h = header {
            try stored.write(h)
            header = nil
        }
        try sealChunk(count: pending.count, last: true)
        try stored.finish()
    }

    func commit(mode: PutMode) throws -> PutOutcome { try downstream.commit(mode: mode) }
    func abort() { downstream.abort() }
}

/// A key this process lacks for what it was asked to do.
public enum RepositoryKeyError: Error, CustomStringConvertible, ExitStatusProviding {
    case cannotWrite(String)
    case notEncrypted(String)
    case passphraseRecipients(String)
    case unknownRecipient(String, [String])
    case lastRecipient(String)

    public var description: String {
        switch self {
        case let .cannotWrite(message): return message
        case let .notEncrypted(location): return "\(location) is not an encrypted repository (encryption is chosen at `backstop init --encrypt`)"
        case let .passphraseRecipients(location): return "\(location) is encrypted to a passphrase; its recipients cannot be changed (copy its snapshots to a repository encrypted to recipients)"
        case let .unknownRecipient(r, current): return "\(r) is not a recipient of this repository (its recipients: \(current.joined(separator: ", ")))"
        case let .lastRecipient(location): return "removing every recipient of \(location) would leave nobody able to read new backups; add the new recipient first"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .cannotWrite: return .permissionDenied
        case .notEncrypted, .passphraseRecipients, .unknownRecipient, .lastRecipient: return .usage
        }
    }
}
