import Foundation

/// Identity files and recipients files as `age` reads them: one key per line, `#` comments and
/// blank lines ignored.
public enum AgeKeyFile {
    /// The identities in an identity file (`age-keygen` output); at least one.
    public static func identities(_ text: String, source: String) throws -> [AgeIdentity] {
        var found: [AgeIdentity] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            found.append(try AgeIdentity(parsing: line, source: "\(source) line \(n + 1)"))
        }
        guard !found.isEmpty else { throw AgeError.invalidKey(source: source, reason: "holds no identity (AGE-SECRET-KEY-1… lines); create one with `backstop key generate`") }
        return found
    }

    /// The recipients in a recipients file (`age -R` format); at least one.
    public static func recipients(_ text: String, source: String) throws -> [AgeRecipient] {
        var found: [AgeRecipient] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            found.append(try AgeRecipient(parsing: line, source: "\(source) line \(n + 1)"))
        }
        guard !found.isEmpty else { throw AgeError.invalidKey(source: source, reason: "holds no recipient (age1… lines)") }
        return found
    }

    /// Reads an identity file; unreadable files are `invalidKey` errors naming the path.
    public static func identities(atPath path: String) throws -> [AgeIdentity] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AgeError.invalidKey(source: path, reason: "cannot read this identity file (\(String(cString: strerror(errno))))")
        }
        return try identities(String(decoding: data, as: UTF8.self), source: path)
    }

    public static func recipients(atPath path: String) throws -> [AgeRecipient] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AgeError.invalidKey(source: path, reason: "cannot read this recipients file (\(String(cString: strerror(errno))))")
        }
        return try recipients(String(decoding: data, as: UTF8.self), source: path)
    }

    /// Writes a new identity file (mode 0600) for `identity`; an existing file is refused
    /// (`AgeError.invalidKey`, exit 64), never overwritten.
    public static func writeNew(_ identity: AgeIdentity, to path: String) throws {
        try writePrivate(Array(text(for: identity).utf8), to: path)
    }

    /// Creates `path` with mode 0600 holding `bytes`, durably; never over an existing file.
    static func writePrivate(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            if errno == EEXIST { throw AgeError.invalidKey(source: path, reason: "already exists; a key file is never overwritten: choose another path") }
            throw FileError.open(path: path, errno: errno)
        }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { let e = errno; unlink(path); throw FileError.write(path: path, errno: e) }
            done += n
        }
        guard fsync(fd) == 0 else { let e = errno; unlink(path); throw FileError.sync(path: path, errno: e) }
    }

    /// An identity file as `age-keygen` writes it: creation time and public key as comments.
    public static func text(for identity: AgeIdentity, createdAt: Date = Date()) -> String {
        let created = ISO8601DateFormatter().string(from: createdAt)
        return "# created: \(created)\n# public key: \(identity.recipient!.description)\n\(identity.secretKeyText!)\n"
    }
}
