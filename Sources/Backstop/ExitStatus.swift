/// Backstop's exit codes: one table, used by the CLI's root command and listed in `--help`.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    case failure = 1
    case warnings = 3
    case usage = 64
    case integrity = 65
    case noMatch = 66
    case targetNotEmpty = 73
    case ioError = 74
    case lockHeld = 75
    case interrupted = 130

    public var meaning: String {
        switch self {
        case .success: return "success"
        case .failure: return "unexpected failure (including: not a repository)"
        case .warnings: return "completed with warnings (some files skipped or changed while read)"
        case .usage: return "usage error or invalid policy; a flag that does not apply to the snapshot's kind"
        case .integrity: return "integrity failure: corrupt, truncated or hostile data, or a refused dump"
        case .noMatch: return "nothing matched the selection, or a source is missing"
        case .targetNotEmpty: return "restore target exists and is not empty"
        case .ioError: return "I/O error (disk full, unreadable repository or catalog; a restore target that cannot be written)"
        case .lockHeld: return "the repository's writer lock is held by another process"
        case .interrupted: return "interrupted by SIGINT or SIGTERM; what the command had started was cleaned up"
        }
    }

    /// The table as `--help` prints it.
    public static var helpTable: String {
        allCases.map { "  \(String($0.rawValue).padding(toLength: 4, withPad: " ", startingAt: 0)) \($0.meaning)" }
            .joined(separator: "\n")
    }
}

/// An error that knows which exit status it stands for.
public protocol ExitStatusProviding: Error {
    var exitStatus: ExitStatus { get }
}
