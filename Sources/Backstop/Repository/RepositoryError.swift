import Foundation

/// Errors about the repository itself: its presence, format, lock and files.
public enum RepositoryError: Error, CustomStringConvertible, ExitStatusProviding {
    case notARepository(path: String)
    case alreadyExists(path: String)
    case unsupportedFormat(path: String, format: Int)
    case unreadableConfig(path: String, reason: String)
    case lockHeld(path: String, holder: LockHolder, waited: TimeInterval)
    case io(path: String, operation: String, errno: Int32)
    case snapshotNotFound(String)
    case ambiguousSnapshot(prefix: String, matches: [SnapshotID])
    case unreadableManifest(id: String, reason: String)

    public var description: String {
        switch self {
        case let .notARepository(path):
            return "\(path) is not a Backstop repository (no backstop.json); create one with `backstop init --repo \(path)`"
        case let .alreadyExists(path):
            return "\(path) already holds a Backstop repository; nothing was changed"
        case let .unsupportedFormat(path, format):
            return "\(path) uses repository format \(format), which this backstop (format \(Manifest.currentFormat)) cannot read; upgrade backstop"
        case let .unreadableConfig(path, reason):
            return "cannot read \(path)/backstop.json: \(reason); the repository may be damaged"
        case let .lockHeld(path, holder, waited):
            return "the repository \(path) is locked by \(holder) (waited \(Int(waited))s); wait for it to finish or raise --lock-timeout; if that process is gone from host \(holder.host), remove \(path)/locks/writer.lock"
        case let .io(path, operation, e):
            return "cannot \(operation) \(path): \(String(cString: strerror(e)))"
        case let .snapshotNotFound(text):
            return "no snapshot matches \(text); list them with `backstop list`"
        case let .ambiguousSnapshot(prefix, matches):
            return "\(prefix) names more than one snapshot: \(matches.map(\.rawValue).joined(separator: ", ")); give more characters"
        case let .unreadableManifest(id, reason):
            return "the manifest of snapshot \(id) cannot be read: \(reason); run `backstop verify \(id)`"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .notARepository, .alreadyExists, .unreadableConfig: return .failure
        case .unsupportedFormat: return .failure
        case .lockHeld: return .lockHeld
        case .io: return .ioError
        case .snapshotNotFound, .ambiguousSnapshot: return .noMatch
        case .unreadableManifest: return .integrity
        }
    }
}
