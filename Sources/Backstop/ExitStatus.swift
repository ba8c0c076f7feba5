import Foundation
import GRDB

/// Backstop's exit codes: one table, used by the CLI's root command and listed in `--help`.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    case failure = 1
    case warnings = 3
    case usage = 64
    case integrity = 65
    case noMatch = 66
    case unavailable = 69
    case targetNotEmpty = 73
    case ioError = 74
    case lockHeld = 75
    case permissionDenied = 77
    case interrupted = 130

    public var meaning: String {
        switch self {
        case .success: return "success"
        case .failure: return "unexpected failure (including: not a repository)"
        case .warnings: return "completed with warnings (some files skipped or changed while read)"
        case .usage: return "usage error or invalid policy; a flag that does not apply to the snapshot's kind"
        case .integrity: return "integrity failure: corrupt, truncated or hostile data, or a refused dump"
        case .noMatch: return "nothing matched the selection, or a source is missing"
        case .unavailable: return "a remote repository's server could not be reached or kept failing (after retries); a tool the command needs is missing or of the wrong version (restore --prepare)"
        case .targetNotEmpty: return "restore target exists and is not empty"
        case .ioError: return "I/O error (disk full, unreadable repository or catalog; a restore target that cannot be written)"
        case .lockHeld: return "the repository's writer lock is held by another process"
        case .permissionDenied: return "permission denied: a missing or wrong key (identity), wrong credentials, or access to the bucket refused"
        case .interrupted: return "interrupted by SIGINT or SIGTERM; what the command had started was cleaned up"
        }
    }

    /// The table as `--help` prints it.
    public static var helpTable: String {
        allCases.map { "  \(String($0.rawValue).padding(toLength: 4, withPad: " ", startingAt: 0)) \($0.meaning)" }
            .joined(separator: "\n")
    }
}

extension ExitStatus {
    /// The exit status `error` stands for: the one mapping from error to exit code, used by the
    /// root command and by `backstop run` for each job, so a failure has the same code whichever
    /// command met it. Every error type the library throws conforms to `ExitStatusProviding`;
    /// the errors of Foundation and GRDB that can pass through are mapped here. Anything else is
    /// unexpected (1).
    public init(for error: Error) {
        switch error {
        case let error as ExitStatusProviding:
            self = error.exitStatus
        case is DecodingError:
            // Stored JSON (a manifest, an entry list) that does not decode: the data is at fault.
            self = .integrity
        case let error as DatabaseError:
            // The catalog: a full disk, a read-only or damaged file is an I/O error of the
            // repository (as `RepositoryError.unreadableCatalog`); a busy one is held by another
            // process.
            switch error.resultCode {
            case .SQLITE_FULL, .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_IOERR, .SQLITE_NOTADB, .SQLITE_CORRUPT:
                self = .ioError
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                self = .lockHeld
            default:
                self = .failure
            }
        case let error as CocoaError where error.code.rawValue >= CocoaError.fileNoSuchFile.rawValue && error.code.rawValue <= CocoaError.fileWriteVolumeReadOnly.rawValue:
            // Foundation's file reading and writing errors (256…642).
            self = .ioError
        default:
            self = .failure
        }
    }
}

extension ExitStatus {
    /// Whether `error` is a failure to read the repository's storage (EIO, permission denied, a
    /// failing network), as opposed to data that was read and found wrong or an object that is
    /// missing. Such a failure is no evidence about the stored data: 74, and never recorded as a
    /// failed verification.
    public static func isReadFailure(_ error: Error) -> Bool {
        switch error {
        case let e as FrameError:
            return isReadFailure(e.underlying)
        case let e as FileError:
            switch e {
            case let .open(_, n), let .read(_, n): return n != ENOENT && n != ENOTDIR
            default: return false
            }
        case let e as StorageError:
            if case .io = e { return true }
            return false
        case let e as S3Error:
            if case .invalidAddress = e { return false }
            return true
        case let e as AgeError:
            // A missing or wrong key says nothing about the data.
            if case .noMatchingIdentity = e { return true }
            return false
        case is RepositoryKeyError:
            return true
        case let e as RepositoryError:
            if case let .io(_, _, n) = e { return n != ENOENT && n != ENOTDIR }
            return false
        default:
            return false
        }
    }
}

/// An error that knows which exit status it stands for.
public protocol ExitStatusProviding: Error {
    var exitStatus: ExitStatus { get }
}
