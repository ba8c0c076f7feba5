import Foundation

/// Repositories named as users name them (a path or `s3://BUCKET/PREFIX`): what the CLI does.
extension Repository {
    /// The backend `location` names (see `RepositoryAddress`).
    public static func storage(for location: String, _ settings: RepositoryAddress.Settings = .init()) throws -> StorageBackend {
        try RepositoryAddress(parsing: location).makeBackend(settings)
    }

    /// Opens the repository `location` names, its catalog reconciled (a remote repository's in
    /// this host's cache); an encrypted one with `keys`.
    public static func open(location: String, _ settings: RepositoryAddress.Settings = .init(),
                            keys: RepositoryKeys = RepositoryKeys()) throws -> Repository {
        try open(storage: storage(for: location, settings), keys: keys)
    }

    /// Creates a repository where `location` says: a local directory (as `create(at:)`), or
    /// an S3 prefix (the bucket must exist); encrypted to `recipients` when there are any (see
    /// `create(storage:…)`).
    @discardableResult
    public static func create(location: String, _ settings: RepositoryAddress.Settings = .init(), compressionLevel: Int32 = 3,
                              force: Bool = false, encryptTo recipients: [AgeRecipient] = [],
                              writerKeyPath: String? = nil) throws -> Repository {
        let address = try RepositoryAddress(parsing: location)
        if case let .local(path) = address {
            return try create(at: path, compressionLevel: compressionLevel, force: force, encryptTo: recipients, writerKeyPath: writerKeyPath)
        }
        return try create(storage: address.makeBackend(settings), compressionLevel: compressionLevel, force: force,
                          encryptTo: recipients, writerKeyPath: writerKeyPath)
    }
}
