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

    /// The recipients as messages name them.
    var expectedRecipients: [String] { encryption.isPassphrase ? ["a passphrase (scrypt)"] : encryption.recipients }

    /// Encrypts a small private value (a manifest's private part, an event's note) to the
    /// recipients: a whole age file, base64.
    /// `toRecipientsOnly`: the value needs only the public recipients (an event's note: no
    /// writer key needed), not the keyed-hash key that writing a snapshot needs.
    func sealValue(_ plaintext: [UInt8], toRecipientsOnly: Bool = false) throws -> String {
        if toRecipientsOnly, let sealer { return AgeBase64.encode(try sealer.seal(plaintext)) }
        return AgeBase64.encode(try requireSealer().seal(plaintext))
    }

    /// Decrypts what `sealValue` made; nil without an identity that opens it (the caller says
    /// what is sealed). A damaged value is `AgeError` (65) naming `object`.
    func unsealValue(_ sealed: String, object: String) throws -> [UInt8]? {
        guard let keyring else { return nil }
        guard let bytes = AgeBase64.decode(sealed) else {
            throw AgeError.malformedHeader(object: object, reason: "its sealed part is not base64")
        }
        var out: [UInt8] = []
        do {
            try Age.decrypt(bytes, keyring: keyring) { out += $0 }
        } catch let error as AgeError {
            if case .noMatchingIdentity = error { return nil }
            throw error.naming(object)
        }
        return out
    }

    /// The manifest as an encrypted repository stores it: the private fields sealed.
    func seal(_ manifest: Manifest) throws -> Manifest {
        guard manifest.sealed == nil else { return manifest }
        let privatePart = Array(try Timestamp.jsonEncoder().encode(ManifestPrivate(of: manifest)))
        return manifest.sealing(try sealValue(privatePart))
    }

    /// The manifest with its private part back, when an identity opens it; as it is otherwise.
    func unseal(_ manifest: Manifest) throws -> Manifest {
        guard let sealed = manifest.sealed else { return manifest }
        let object = "snapshots/\(manifest.id)/manifest.json in \(base.location)"
        guard let bytes = try unsealValue(sealed, object: object) else { return manifest }
        do {
            return manifest.unsealing(try Timestamp.jsonDecoder().decode(ManifestPrivate.self, from: Data(bytes)))
        } catch {
            throw AgeError.corruptPayload(object: object, reason: "its sealed part does not decode: \(RepositoryError.describe(decoding: error))")
        }
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
        let sealer = try requireSealer()
        guard base is LocalBackend else { return try base.put(key, try sealer.seal(bytes), mode: mode) }
        // A local directory: sealed chunk by chunk into the temporary file, so no sealed copy of
        // the whole object (a frame: up to several MiB, one per compression worker) is held.
        return try EncryptingObjectWriter(try base.makeWriter(for: key), sealer: sealer, hashing: false).store(bytes, mode: mode)
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

/// Encrypts a streaming put chunk by chunk (at most one 64 KiB chunk held back, so the last one
/// can be flagged; whole chunks of a large write are sealed straight from the caller's buffer),
/// hashing what it stores unless told not to.
final class EncryptingObjectWriter: ObjectWriter {
    private let downstream: ObjectWriter
    private let stored: ByteSink
    private let hasher: HashingSink?
    private var storedCount: Int64 = 0
    private let payloadKey: SymmetricKey
    private var pending: [UInt8] = []
    private var index = 0
    var key: StorageKey { downstream.key }

    init(_ downstream: ObjectWriter, sealer: AgeSealer, hashing: Bool = true) {
        self.downstream = downstream
        hasher = hashing ? HashingSink(downstream) : nil
        stored = hasher ?? downstream
        let nonce = Age.randomBytes(AgeStream.nonceSize)
        payloadKey = AgeStream.payloadKey(fileKey: sealer.fileKey, nonce: nonce)
        pending.reserveCapacity(AgeStream.chunkSize)
        header = sealer.header + nonce
    }

    private var header: [UInt8]?

    /// Size and digest of the stored (encrypted) object; valid after `finish()`.
    var storedSize: Int64 { storedCount }
    var storedDigest: SHA256Digest? { hasher?.digest }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let h = header {
            try emit(h)
            header = nil
        }
        let chunk = AgeStream.chunkSize
        var offset = 0
        while offset < bytes.count {
            // A full chunk is sealed only once more bytes follow it (else it may be the last).
            if pending.count == chunk {
                try pending.withUnsafeBytes { try seal($0, last: false) }
                pending.removeAll(keepingCapacity: true)
            }
            let left = bytes.count - offset
            if pending.isEmpty && left > chunk {
                try seal(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + chunk]), last: false)
                offset += chunk
                continue
            }
            let take = min(chunk - pending.count, left)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + take]))
            offset += take
        }
    }

    private func seal(_ plaintext: UnsafeRawBufferPointer, last: Bool) throws {
        let box = try ChaChaPoly.seal(plaintext, using: payloadKey, nonce: AgeStream.chunkNonce(index, last: last))
        try box.ciphertext.withUnsafeBytes { try emit($0) }
        try box.tag.withUnsafeBytes { try emit($0) }
        index += 1
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try emit($0) }
    }

    private func emit(_ bytes: UnsafeRawBufferPointer) throws {
        try stored.write(bytes)
        storedCount += Int64(bytes.count)
    }

    func markBoundary() throws {}

    func finish() throws {
        if let h = header {
            try emit(h)
            header = nil
        }
        try pending.withUnsafeBytes { try seal($0, last: true) }
        pending.removeAll()
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
