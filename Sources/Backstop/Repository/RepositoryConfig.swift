import Foundation

/// `backstop.json`: the repository's identity and settings.
public struct RepositoryConfig: Codable, Sendable, Equatable {
    public struct Compression: Codable, Sendable, Equatable {
        public var algorithm: String
        public var level: Int32
    }

    public var format: Int
    public var id: String
    public var createdAt: Date
    public var compression: Compression
    /// Present on an encrypted repository (chosen at `init`; see `EncryptedBackend`).
    public var encryption: RepositoryEncryption? = nil
}
