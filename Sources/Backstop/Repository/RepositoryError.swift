import Foundation

/// Errors about the repository itself: its presence, format, lock and files.
public enum RepositoryError: Error, CustomStringConvertible, ExitStatusProviding {
    case notARepository(path: String)
    case alreadyExists(path: String)
    case notEmpty(path: String, entries: [String])
    case unsupportedFormat(path: String, format: Int)
    /// A format-1 repository: `backstop migrate` converts it.
    case needsMigration(path: String)
    case unreadableConfig(path: String, reason: String)
    case lockHeld(path: String, holder: LockHolder, waited: TimeInterval, lockFile: String)
    case io(path: String, operation: String, errno: Int32)
    case snapshotNotFound(String)
    case ambiguousSnapshot(prefix: String, matches: [SnapshotID])
    case unreadableManifest(id: String, reason: String)
    case unreadableCatalog(path: String, catalog: String, reason: String)

    public var description: String {
        switch self {
        case let .notARepository(path):
            return "\(path) is not a Backstop repository (no backstop.json); create one with `backstop init --repo \(path)`"
        case let .alreadyExists(path):
            return "\(path) already holds a Backstop repository; nothing was changed"
        case let .notEmpty(path, entries):
            if entries.isEmpty { return "\(path) exists and is not a directory; choose another path for the repository" }
            let shown = entries.prefix(3).joined(separator: ", ") + (entries.count > 3 ? ", …" : "")
            return "\(path) is not empty (\(shown)) and is not a Backstop repository; nothing was changed. Choose an empty or new directory, or pass --force to create the repository beside what is there"
        case let .unsupportedFormat(path, format):
            return "\(path) uses repository format \(format), which this backstop (format \(Manifest.currentFormat)) cannot read; upgrade backstop"
        case let .needsMigration(path):
            return "\(path) is a format-1 repository (one payload file per snapshot); this backstop stores content-addressed frames (format \(Manifest.currentFormat)). Convert it in place with `backstop migrate --repo \(path)` (no recompression; safe to interrupt and run again), then run this command again"
        case let .unreadableConfig(path, reason):
            return "cannot read \(path)/backstop.json: \(reason); the repository's identity file is damaged: restore it from a copy of the repository, or recreate it with the same \"format\" (\(Manifest.currentFormat)), any \"id\", a \"createdAt\" time and \"compression\" as `backstop init` writes them"
        case let .lockHeld(path, holder, waited, lockFile):
            let expiry = holder.expiresAt.map { "; its lease expires at \(Timestamp.formatSeconds($0)) unless renewed, and is broken then" } ?? ""
            return "the repository \(path) is locked by \(holder) (waited \(Int(waited))s)\(expiry); wait for it to finish or raise --lock-timeout; if that process is gone from host \(holder.host), remove \(lockFile)"
        case let .io(path, operation, e):
            return "cannot \(operation) \(path): \(String(cString: strerror(e)))"
        case let .snapshotNotFound(text):
            return "no snapshot matches \(text); list them with `backstop list`"
        case let .ambiguousSnapshot(prefix, matches):
            return "\(prefix) names more than one snapshot: \(matches.map(\.rawValue).joined(separator: ", ")); give more characters"
        case let .unreadableCatalog(path, catalog, reason):
            return "cannot use the catalog \(catalog): \(reason); the catalog is only an index of the repository: `backstop catalog rebuild --repo \(path)` recreates it from the snapshots"
        case let .unreadableManifest(id, reason):
            return "the manifest of snapshot \(id) cannot be read: \(reason); run `backstop verify \(id)`"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .notARepository, .alreadyExists, .notEmpty, .unreadableConfig: return .failure
        case .unsupportedFormat, .needsMigration: return .failure
        case .lockHeld: return .lockHeld
        case .io: return .ioError
        case .snapshotNotFound, .ambiguousSnapshot: return .noMatch
        case .unreadableManifest: return .integrity
        case .unreadableCatalog: return .ioError
        }
    }

    /// A JSON decoding failure in words: what is wrong and where, without Swift's type dump.
    static func describe(decoding error: Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty ? "" : " at \"" + path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "\""
        }
        switch error {
        case let .dataCorrupted(context):
            return context.codingPath.isEmpty ? "not valid JSON" : "invalid value\(at(context.codingPath)): \(context.debugDescription)"
        case let .keyNotFound(key, context):
            return "the key \"\(key.stringValue)\" is missing\(at(context.codingPath))"
        case let .typeMismatch(_, context), let .valueNotFound(_, context):
            return "wrong type of value\(at(context.codingPath))"
        @unknown default:
            return "\(error)"
        }
    }
}
