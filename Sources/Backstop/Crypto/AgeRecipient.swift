import Crypto
import _CryptoExtras
import Foundation

/// Whom an age file is encrypted to: an X25519 public key (`age1…`) or a passphrase (scrypt).
public enum AgeRecipient: Sendable, Equatable, CustomStringConvertible {
    case x25519(publicKey: [UInt8])
    /// `workFactor` is log2 of scrypt's N (age's default is 18).
    case scrypt(passphrase: [UInt8], workFactor: Int)

    static let x25519Label = Array("age-encryption.org/v1/X25519".utf8)
    static let scryptLabel = Array("age-encryption.org/v1/scrypt".utf8)

    /// Parses `age1…`.
    public init(parsing text: String, source: String = "recipient") throws {
        guard let decoded = Bech32.decode(text), decoded.hrp == "age", decoded.data.count == 32, text == text.lowercased() else {
            throw AgeError.invalidKey(source: source, reason: "`\(text.prefix(80))` is not an age X25519 recipient (age1… as `age-keygen -y` prints it)")
        }
        self = .x25519(publicKey: decoded.data)
    }

    /// `age1…` for X25519; `scrypt` (a passphrase has no public name).
    public var description: String {
        switch self {
        case let .x25519(key): return Bech32.encode(hrp: "age", data: key)
        case .scrypt: return "a passphrase (scrypt)"
        }
    }

    /// A stanza that gives `fileKey` to this recipient.
    func wrap(_ fileKey: [UInt8]) throws -> AgeStanza {
        switch self {
        case let .x25519(recipientKey):
            let ephemeral = Curve25519.KeyAgreement.PrivateKey()
            let share = Array(ephemeral.publicKey.rawRepresentation)
            let secret = try ephemeral.sharedSecretFromKeyAgreement(with: .init(rawRepresentation: recipientKey))
            let key = AgeRecipient.x25519WrapKey(secret: secret.withUnsafeBytes { Array($0) }, share: share, recipient: recipientKey)
            return AgeStanza(type: "X25519", arguments: [AgeBase64.encode(share)], body: try Self.seal(fileKey, key))
        case let .scrypt(passphrase, workFactor):
            var salt = [UInt8](repeating: 0, count: 16)
            for i in salt.indices { salt[i] = UInt8.random(in: 0...255) }
            let key = try Self.scryptKey(passphrase: passphrase, salt: salt, workFactor: workFactor)
            return AgeStanza(type: "scrypt", arguments: [AgeBase64.encode(salt), String(workFactor)], body: try Self.seal(fileKey, key))
        }
    }

    static func x25519WrapKey(secret: [UInt8], share: [UInt8], recipient: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: secret), salt: share + recipient, info: x25519Label, outputByteCount: 32)
    }

    static func scryptKey(passphrase: [UInt8], salt: [UInt8], workFactor: Int) throws -> SymmetricKey {
        try KDF.Scrypt.deriveKey(from: passphrase, salt: scryptLabel + salt, outputByteCount: 32,
                                 rounds: 1 << workFactor, blockSize: 8, parallelism: 1)
    }

    static let zeroNonce = try! ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12))

    static func seal(_ fileKey: [UInt8], _ key: SymmetricKey) throws -> [UInt8] {
        let box = try ChaChaPoly.seal(fileKey, using: key, nonce: zeroNonce)
        return Array(box.ciphertext) + Array(box.tag)
    }

    /// The file key in `body`, or nil when `key` does not open it.
    static func open(_ body: [UInt8], _ key: SymmetricKey) -> [UInt8]? {
        guard let box = try? ChaChaPoly.SealedBox(nonce: zeroNonce, ciphertext: body.prefix(16), tag: body.suffix(16)),
              let plain = try? ChaChaPoly.open(box, using: key) else { return nil }
        return Array(plain)
    }
}

/// What decrypts an age file: an X25519 secret key (`AGE-SECRET-KEY-1…`) or a passphrase.
public enum AgeIdentity: Sendable {
    case x25519(Curve25519.KeyAgreement.PrivateKey)
    case scrypt(passphrase: [UInt8])

    /// The highest scrypt work factor accepted (age's own limit): a file asking for more would
    /// take minutes and gigabytes to open.
    static let maximumWorkFactor = 22

    /// A new random X25519 identity.
    public static func generate() -> AgeIdentity { .x25519(Curve25519.KeyAgreement.PrivateKey()) }

    /// Parses `AGE-SECRET-KEY-1…`.
    public init(parsing text: String, source: String = "identity") throws {
        guard let decoded = Bech32.decode(text), decoded.hrp == "age-secret-key-", decoded.data.count == 32,
              let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: decoded.data) else {
            throw AgeError.invalidKey(source: source, reason: "this is not an age X25519 identity (AGE-SECRET-KEY-1… as `age-keygen` writes it)")
        }
        self = .x25519(key)
    }

    /// `AGE-SECRET-KEY-1…` (nil for a passphrase).
    public var secretKeyText: String? {
        guard case let .x25519(key) = self else { return nil }
        return Bech32.encode(hrp: "age-secret-key-", data: Array(key.rawRepresentation)).uppercased()
    }

    /// The recipient that encrypts to this identity.
    public var recipient: AgeRecipient? {
        guard case let .x25519(key) = self else { return nil }
        return .x25519(publicKey: Array(key.publicKey.rawRepresentation))
    }

    /// The file key `stanza` holds for this identity; nil when the stanza is not for it.
    /// Throws `malformedHeader` for a stanza of this identity's type that breaks the spec.
    func unwrap(_ stanza: AgeStanza) throws -> [UInt8]? {
        func bad(_ reason: String) -> AgeError { .malformedHeader(object: nil, reason: reason) }
        switch self {
        case let .x25519(key):
            guard stanza.type == "X25519" else { return nil }
            guard stanza.arguments.count == 1 else { throw bad("an X25519 stanza has \(stanza.arguments.count) arguments, not 1") }
            guard let share = AgeBase64.decode(stanza.arguments[0]), share.count == 32 else { throw bad("an X25519 stanza's share is not 32 bytes of canonical base64") }
            guard stanza.body.count == 32 else { throw bad("an X25519 stanza's body is not a 16-byte file key and its tag") }
            guard let peer = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: share),
                  let secret = try? key.sharedSecretFromKeyAgreement(with: peer) else {
                throw bad("an X25519 stanza's share is a low-order point")
            }
            let secretBytes = secret.withUnsafeBytes { Array($0) }
            guard secretBytes.contains(where: { $0 != 0 }) else { throw bad("an X25519 stanza's share is a low-order point") }
            let wrapKey = AgeRecipient.x25519WrapKey(secret: secretBytes, share: share, recipient: Array(key.publicKey.rawRepresentation))
            return AgeRecipient.open(stanza.body, wrapKey)
        case let .scrypt(passphrase):
            guard stanza.type == "scrypt" else { return nil }
            guard stanza.arguments.count == 2 else { throw bad("a scrypt stanza has \(stanza.arguments.count) arguments, not 2") }
            guard let salt = AgeBase64.decode(stanza.arguments[0]), salt.count == 16 else { throw bad("a scrypt stanza's salt is not 16 bytes of canonical base64") }
            let factor = stanza.arguments[1]
            guard let first = factor.utf8.first, first != UInt8(ascii: "0"), factor.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  factor.utf8.count <= 2, let logN = Int(factor), logN >= 1 else {
                throw bad("a scrypt stanza's work factor `\(factor.prefix(20))` is not a decimal number without leading zeros")
            }
            guard logN <= Self.maximumWorkFactor else { throw bad("a scrypt stanza's work factor \(logN) is above \(Self.maximumWorkFactor)") }
            guard stanza.body.count == 32 else { throw bad("a scrypt stanza's body is not a 16-byte file key and its tag") }
            return AgeRecipient.open(stanza.body, try AgeRecipient.scryptKey(passphrase: passphrase, salt: salt, workFactor: logN))
        }
    }
}
