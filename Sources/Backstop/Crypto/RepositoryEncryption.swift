import Crypto
import Foundation

/// `backstop.json`'s `encryption`: how an encrypted repository's objects are encrypted.
///
/// Public by design: the recipients (X25519 public keys, or `scrypt` for a passphrase) are what
/// any writer encrypts to, and `keyedHashKey` is the keyed-hash key for frame IDs as an age file
/// (base64) encrypted to those recipients, so any identity can recover it.
public struct RepositoryEncryption: Codable, Sendable, Equatable {
    public var format: String
    /// `age1…` keys, or `["scrypt"]` for a passphrase repository.
    public var recipients: [String]
    /// The 32-byte keyed-hash key, as a base64 age file encrypted to `recipients`.
    public var keyedHashKey: String

    public init(format: String = AgeHeader.versionLine, recipients: [String], keyedHashKey: String) {
        self.format = format
        self.recipients = recipients
        self.keyedHashKey = keyedHashKey
    }

    public var isPassphrase: Bool { recipients == ["scrypt"] }

    /// The X25519 recipients (none for a passphrase repository).
    func x25519Recipients() throws -> [AgeRecipient] {
        if isPassphrase { return [] }
        return try recipients.map { try AgeRecipient(parsing: $0, source: "backstop.json") }
    }
}

/// What a writer needs besides `backstop.json`: the keyed-hash key for frame IDs, and for a
/// passphrase repository the header and file key made at `init` (so writers need no passphrase).
/// It is a secret of the writing hosts: with it, one can tell whether given content is stored
/// (and, for a passphrase repository, decrypt). Stored as JSON, mode 0600.
public struct WriterKey: Codable, Sendable, Equatable {
    public var repository: String
    public var keyedHashKey: String
    public var passphraseHeader: String?
    public var passphraseFileKey: String?

    /// Where `init` puts it by default: `$XDG_CONFIG_HOME/backstop/writer-keys/<repository id>.json`
    /// (`~/.config/…` without XDG_CONFIG_HOME). `$BACKSTOP_WRITER_KEY` or `--writer-key` override it.
    public static func defaultPath(repositoryID: String) -> String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((env["HOME"] ?? NSHomeDirectory()) + "/.config")
        return base + "/backstop/writer-keys/\(repositoryID).json"
    }

    /// Writes it with mode 0600 (its folder 0700), never over an existing file.
    public func write(to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try AgeKeyFile.writePrivate(Array(try JSONEncoder().encode(self)) + [0x0A], to: path)
    }

    public static func read(from path: String) throws -> WriterKey? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(WriterKey.self, from: data)
        } catch {
            throw AgeError.invalidKey(source: path, reason: "not a Backstop writer key file (\(RepositoryError.describe(decoding: error)))")
        }
    }
}

/// The keys a program holds for an encrypted repository: identities (to read) and where the
/// writer key file is (to write). Both optional: what needs a missing one fails with exit 77.
public struct RepositoryKeys: Sendable {
    public var identities: [AgeIdentity]
    /// The writer key file; nil means its default path for the repository.
    public var writerKeyPath: String?

    public init(identities: [AgeIdentity] = [], writerKeyPath: String? = nil) {
        self.identities = identities
        self.writerKeyPath = writerKeyPath
    }
}

/// What creating an encrypted repository produced.
public struct EncryptionSetup: Sendable {
    public var encryption: RepositoryEncryption
    public var writerKey: WriterKey
}

extension RepositoryEncryption {
    /// Makes a keyed-hash key and wraps it for `recipients` (X25519 keys, or one passphrase).
    public static func create(recipients: [AgeRecipient], repositoryID: String) throws -> EncryptionSetup {
        let hashKey = Age.randomBytes(32)
        let sealer = try AgeSealer(recipients: recipients)
        let wrapped = try sealer.seal(hashKey)
        let passphrase = recipients.contains { if case .scrypt = $0 { return true } else { return false } }
        var writer = WriterKey(repository: repositoryID, keyedHashKey: Age.hex(hashKey))
        if passphrase {
            writer.passphraseHeader = AgeBase64.encode(sealer.header)
            writer.passphraseFileKey = Age.hex(sealer.fileKey)
        }
        let encryption = RepositoryEncryption(recipients: passphrase ? ["scrypt"] : recipients.map(\.description),
                                              keyedHashKey: AgeBase64.encode(wrapped))
        return EncryptionSetup(encryption: encryption, writerKey: writer)
    }
}
