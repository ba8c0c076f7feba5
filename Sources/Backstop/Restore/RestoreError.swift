/// Why a restore stopped. The target is left as it was whenever one of these is thrown, except
/// `corruptWhileStreaming` and `targetWrite` to standard output, where bytes already went out.
public enum RestoreError: Error, CustomStringConvertible, ExitStatusProviding {
    case targetNotEmpty(String)
    case hostileEntry(snapshot: SnapshotID, path: String, reason: String)
    case corrupt(snapshot: SnapshotID, file: String, location: String, reason: String)
    /// A stored file could not be read (an I/O error of the repository's storage): no evidence
    /// about the snapshot, so nothing is recorded against it.
    case unreadable(snapshot: SnapshotID, file: String, location: String, reason: String)
    /// A stored frame changed between the verifying pass and the streaming pass of a restore to
    /// standard output, after `bytesWritten` bytes had gone out.
    case corruptWhileStreaming(snapshot: SnapshotID, file: String, location: String, reason: String, bytesWritten: Int64)
    case noSuchSection(snapshot: SnapshotID, name: String, kind: String, available: [String])
    case ambiguousSection(name: String, matches: [String])
    case wrongKind(snapshot: SnapshotID, wanted: String)
    case nothingIncluded(patterns: [String])
    /// The target cannot be written: a broken pipe, a full disk, no permission. The snapshot is
    /// not at fault.
    case targetWrite(target: String, reason: String)
    /// An encrypted object this process holds no identity for (`AgeError.noMatchingIdentity`).
    case noKey(snapshot: SnapshotID, reason: String)
    /// The target is a FIFO, a device or a socket, which a restore never replaces.
    case unsupportedTarget(path: String, type: String)
    /// A flag that does not apply to the chosen snapshot's kind.
    case flagDoesNotApply(flag: String, snapshot: SnapshotID, kind: SnapshotKind, hint: String)

    public var description: String {
        switch self {
        case let .targetNotEmpty(path):
            return "restore target \(path) exists and is not empty; choose an empty or new path, or pass --force to move the existing one aside (nothing is deleted)"
        case let .hostileEntry(id, path, reason):
            return "snapshot \(id) holds a hostile entry \"\(path)\": \(reason); refused, nothing was written outside the staging folder and the target is unchanged"
        case let .corrupt(id, file, location, reason):
            return "snapshot \(id) failed verification while restoring: \(file) \(location): \(reason); the stored file is corrupt and the target is unchanged — restore from an older snapshot (backstop restore --before … --fallback, or backstop select --before … --explain)"
        case let .unreadable(id, file, location, reason):
            return "cannot read \(file)\(location.isEmpty ? "" : " " + location) of snapshot \(id): \(reason); the repository's storage failed, not the snapshot's data: nothing was restored, the target is unchanged and the snapshot is not marked bad — check the disk or connection and restore again"
        case let .corruptWhileStreaming(id, file, location, reason, written):
            return "snapshot \(id) failed verification while restoring: \(file) \(location): \(reason); \(written) bytes had already been written to standard output: discard them (do not commit what the client loaded); no fallback was tried, as it would append a second stream — restore again, or from an older snapshot"
        case let .noSuchSection(id, name, kind, available):
            return "snapshot \(id) has no \(kind) \"\(name)\"; it has: \(available.isEmpty ? "none" : available.joined(separator: ", "))"
        case let .ambiguousSection(name, matches):
            return "\"\(name)\" matches several tables: \(matches.joined(separator: ", ")); give schema.table"
        case let .wrongKind(id, wanted):
            return "snapshot \(id) is not \(wanted)"
        case let .nothingIncluded(patterns):
            return "no entry matches --include \(patterns.joined(separator: " --include ")); see the entries with `backstop show SNAPSHOT --entries`"
        case let .noKey(id, reason):
            return "cannot restore \(id): \(reason); nothing was restored and the target is unchanged"
        case let .targetWrite(target, reason):
            return "cannot write the restore target \(target): \(reason); the snapshot is intact and nothing was recorded against it — free space, fix permissions or keep the reader of the pipe open, then restore again"
        case let .unsupportedTarget(path, type):
            return "restore target \(path) is \(type); a restore writes only regular files and directories — give a new path, or use --to - and redirect the output"
        case let .flagDoesNotApply(flag, id, kind, hint):
            return "\(flag) does not apply to snapshot \(id), a \(kind.rawValue) snapshot; \(hint)"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .targetNotEmpty: return .targetNotEmpty
        case .hostileEntry, .corrupt, .corruptWhileStreaming: return .integrity
        case .noSuchSection, .nothingIncluded: return .noMatch
        case .ambiguousSection, .wrongKind, .unsupportedTarget, .flagDoesNotApply: return .usage
        case .targetWrite, .unreadable: return .ioError
        case .noKey: return .permissionDenied
        }
    }

    /// What reading a stored file threw, as a restore error: `unreadable` for a failure of the
    /// storage (`ExitStatus.isReadFailure`), else `corrupt`.
    static func reading(_ error: Error, snapshot: SnapshotID, file: String, location: String) -> RestoreError {
        if case AgeError.noMatchingIdentity? = error as? AgeError { return .noKey(snapshot: snapshot, reason: "\(error)") }
        return ExitStatus.isReadFailure(error)
            ? .unreadable(snapshot: snapshot, file: file, location: location, reason: "\(error)")
            : .corrupt(snapshot: snapshot, file: file, location: location, reason: "\(error)")
    }

    /// Whether the data, not the request or the target, is at fault: recorded as a failed
    /// verification.
    public var isIntegrityFailure: Bool {
        switch self {
        case .corrupt, .hostileEntry, .corruptWhileStreaming: return true
        default: return false
        }
    }

    /// Whether trying an older snapshot could help: the data is at fault and nothing of this one
    /// reached the target.
    public var allowsFallback: Bool {
        switch self {
        case .corrupt, .hostileEntry: return true
        default: return false
        }
    }
}
