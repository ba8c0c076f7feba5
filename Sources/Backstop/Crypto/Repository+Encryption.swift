import Foundation

extension Repository {
    /// Whether the repository is encrypted (chosen at `init`).
    public var isEncrypted: Bool { config.encryption != nil }

    /// Throws `AgeError.noMatchingIdentity` (77), naming the recipients the repository is
    /// encrypted to, when it is encrypted and this process holds no identity: for `what`
    /// (restore, full verification, diff of sections, export), before anything is read, so a
    /// missing key is never mistaken for damaged data.
    ///
    /// With `snapshot`, the identity is also tried on that snapshot's frame list, so a wrong
    /// identity is this error (77) too, not a read failure.
    public func requireIdentity(for what: String, snapshot: SnapshotID? = nil) throws {
        guard let encrypted = storage as? EncryptedBackend else { return }
        guard encrypted.canDecrypt else {
            let expected = encrypted.encryption.isPassphrase ? ["a passphrase (scrypt)"] : encrypted.encryption.recipients
            throw AgeError.noMatchingIdentity(object: "\(what) of the encrypted repository \(location)", expected: expected)
        }
        guard let snapshot else { return }
        do {
            _ = try storage.open(RepositoryLayout.snapshotFile(snapshot, "frames.tsv"))
        } catch let error as AgeError {
            if case .noMatchingIdentity = error { throw error }
        } catch {
            // Anything else is for the restore's own checks to report.
        }
        // The manifest's private part (sections, positions) must open with it too.
        if let m = try? manifest(snapshot) { try requireUnsealed(m, for: what) }
    }
}

extension Repository {
    /// Throws `AgeError.noMatchingIdentity` (77), naming the recipients, when `manifest`'s
    /// private part (sections, paths, dump format, binlog and WAL positions) is sealed and this
    /// process holds no identity that opens it: for `what`, which needs those fields.
    public func requireUnsealed(_ manifest: Manifest, for what: String) throws {
        guard manifest.isSealed else { return }
        let expected = (storage as? EncryptedBackend)?.expectedRecipients ?? []
        throw AgeError.noMatchingIdentity(object: "\(what): the sections, paths and positions of snapshot \(manifest.id) are encrypted in the repository \(location)", expected: expected)
    }
}

/// What a change of recipients did, and what it could not undo.
public struct RecipientChange: Sendable {
    public var recipients: [String]
    public var added: [String]
    public var removed: [String]
    /// Frame objects whose file-key wrappings were replaced (nil: not re-wrapped, no identity).
    public var framesRewrapped: Int?
}

extension Repository {
    /// Changes the recipients of an encrypted repository: the keyed-hash key is wrapped again
    /// for the new set and `backstop.json` replaced (atomically, under the writer lease the
    /// caller holds). From then on, every object written is encrypted to the new set.
    ///
    /// What it does not do, by design (objects are immutable and shared by snapshots): objects
    /// written before stay encrypted to the recipients of their time. An added recipient cannot
    /// read them; a removed recipient's identity still decrypts them (and it knew the keyed-hash
    /// key). Re-encrypting old objects means copying the snapshots to a new repository.
    /// Needs the keyed-hash key: the writer key file or an identity.
    ///
    /// With an identity, the frame objects are re-wrapped too: each one's header is replaced
    /// by one holding its file key for the new recipients (payloads untouched; each object is
    /// replaced atomically, so an interrupted re-wrap leaves every object readable, by the old
    /// or the new set, and running it again finishes it). Frames are shared, so without this an
    /// added recipient could not read the unchanged frames that new snapshots reuse. Snapshot
    /// folders' own files (frames.tsv, entry lists) are not re-wrapped (SHA256SUMS covers their
    /// ciphertext): an added recipient reads snapshots taken after the change.
    public func changeRecipients(adding: [AgeRecipient], removing: [String]) throws -> RecipientChange {
        guard let encrypted = storage as? EncryptedBackend else {
            throw RepositoryKeyError.notEncrypted(location)
        }
        guard !encrypted.encryption.isPassphrase else {
            throw RepositoryKeyError.passphraseRecipients(location)
        }
        guard let hashKey = encrypted.hashKeyBytes else {
            throw RepositoryKeyError.cannotWrite("changing the recipients of \(location) needs its writer key file or an identity (--identity FILE or $BACKSTOP_IDENTITY)")
        }
        // backstop.json as stored now (another process may have changed it since this one opened).
        let stored = try Self.readConfig(encrypted.base)
        guard let storedEncryption = stored.encryption else { throw RepositoryKeyError.notEncrypted(location) }
        var current = storedEncryption.recipients
        let unknown = removing.filter { !current.contains($0) }
        guard unknown.isEmpty else { throw RepositoryKeyError.unknownRecipient(unknown[0], current) }
        current.removeAll { removing.contains($0) }
        var added: [String] = []
        for r in adding where !current.contains(r.description) {
            current.append(r.description)
            added.append(r.description)
        }
        guard !current.isEmpty else { throw RepositoryKeyError.lastRecipient(location) }
        let recipients = try current.map { try AgeRecipient(parsing: $0, source: "backstop.json") }
        var newConfig = stored
        newConfig.encryption = RepositoryEncryption(recipients: current, keyedHashKey: AgeBase64.encode(try AgeSealer(recipients: recipients).seal(hashKey)))
        let bytes = Array(try Timestamp.jsonEncoder().encode(newConfig)) + [0x0A]
        var rewrapped: Int?
        if let keyring = encrypted.keyring {
            rewrapped = try Self.rewrapFrames(encrypted.base, to: recipients, keyring: keyring)
        }
        try encrypted.base.put(RepositoryLayout.config, bytes, mode: .replace)
        return RecipientChange(recipients: current, added: added, removed: removing, framesRewrapped: rewrapped)
    }

    /// Replaces the header of every frame object with one for `recipients` (same file key,
    /// so the payload stays as it is); objects that shared a header share the new one.
    static func rewrapFrames(_ base: StorageBackend, to recipients: [AgeRecipient], keyring: AgeKeyring) throws -> Int {
        var newHeaders: [[UInt8]: [UInt8]] = [:]
        var count = 0
        for key in try base.list(under: RepositoryLayout.frames) {
            try Interruption.check()
            let bytes = try base.read(key)
            let parsed: (header: AgeHeader, length: Int)
            do { parsed = try AgeHeader.parse(bytes) } catch is HeaderParseNeedsMore {
                throw AgeError.malformedHeader(object: "\(key) in \(base.location)", reason: "it ends inside its header (truncated)")
            } catch let error as AgeError { throw error.naming("\(key) in \(base.location)") }
            let old = Array(bytes[0..<parsed.length])
            let header: [UInt8]
            if let known = newHeaders[old] {
                header = known
            } else {
                let fileKey: [UInt8]
                do { fileKey = try keyring.fileKey(for: parsed.header, headerBytes: old) } catch let error as AgeError { throw error.naming("\(key) in \(base.location)") }
                header = AgeHeader(stanzas: try recipients.map { try $0.wrap(fileKey) }, fileKey: fileKey).encoded
                newHeaders[old] = header
            }
            try base.put(key, header + bytes[parsed.length...], mode: .replace)
            count += 1
        }
        return count
    }
}
