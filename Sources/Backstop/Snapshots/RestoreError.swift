/// Why a restore stopped. The target is left as it was whenever one of these is thrown.
public enum RestoreError: Error, CustomStringConvertible, ExitStatusProviding {
    case targetNotEmpty(String)
    case hostileEntry(snapshot: SnapshotID, path: String, reason: String)
    case corrupt(snapshot: SnapshotID, file: String, location: String, reason: String)
    case noSuchSection(snapshot: SnapshotID, name: String, kind: String, available: [String])
    case ambiguousSection(name: String, matches: [String])
    case wrongKind(snapshot: SnapshotID, wanted: String)
    case nothingIncluded(patterns: [String])

    public var description: String {
        switch self {
        case let .targetNotEmpty(path):
            return "restore target \(path) exists and is not empty; choose an empty or new path, or pass --force to move the existing one aside (nothing is deleted)"
        case let .hostileEntry(id, path, reason):
            return "snapshot \(id) holds a hostile entry \"\(path)\": \(reason); refused, nothing was written outside the staging folder and the target is unchanged"
        case let .corrupt(id, file, location, reason):
            return "snapshot \(id) failed verification while restoring: \(file) \(location): \(reason); the stored file is corrupt and the target is unchanged — restore from an older snapshot (backstop restore --before … --fallback, or backstop select --before … --explain)"
        case let .noSuchSection(id, name, kind, available):
            return "snapshot \(id) has no \(kind) \"\(name)\"; it has: \(available.isEmpty ? "none" : available.joined(separator: ", "))"
        case let .ambiguousSection(name, matches):
            return "\"\(name)\" matches several tables: \(matches.joined(separator: ", ")); give schema.table"
        case let .wrongKind(id, wanted):
            return "snapshot \(id) is not \(wanted)"
        case let .nothingIncluded(patterns):
            return "no entry matches --include \(patterns.joined(separator: " --include ")); see the entries with `backstop show SNAPSHOT --entries`"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .targetNotEmpty: return .targetNotEmpty
        case .hostileEntry, .corrupt: return .integrity
        case .noSuchSection, .nothingIncluded: return .noMatch
        case .ambiguousSection, .wrongKind: return .usage
        }
    }

    /// Whether trying an older snapshot could help (the data, not the request, is at fault).
    public var isIntegrityFailure: Bool {
        switch self {
        case .corrupt, .hostileEntry: return true
        default: return false
        }
    }
}
