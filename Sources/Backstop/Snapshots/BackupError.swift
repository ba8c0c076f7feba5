/// Why a backup could not be taken. Nothing is committed when one of these is thrown.
public enum BackupError: Error, CustomStringConvertible, ExitStatusProviding {
    case missingPath(String)
    case duplicateName(String, paths: [String])
    case commandFailed(command: String, status: Int32, stderrTail: String)
    case commandKilled(command: String, signal: Int32, stderrTail: String)
    case commandNotStarted(command: String, reason: String)
    case incompleteDump(format: DumpFormat, marker: String)
    /// A pg_dump archive (custom or tar format) that is truncated or does not parse.
    case damagedArchive(format: DumpFormat, reason: String)
    /// A pg_dump archive of a version this backstop cannot check.
    case unsupportedArchive(format: DumpFormat, reason: String)
    case input(String)
    /// The stream held no byte at all: a dump that failed before writing anything.
    case emptyStream(String)
    /// `--format auto` recognised another format than the source's newest logical snapshot.
    case formatChanged(source: String, detected: DumpFormat, previous: DumpFormat, snapshot: SnapshotID)
    /// `--tar-stdin`/`--tar-command`: an entry of the tar stream that would write outside the
    /// restore target or cannot be stored safely (absolute path, `..`, duplicate, escaping link,
    /// device file).
    case unsafeTarEntry(entry: String, reason: String)
    /// `--tar-stdin`/`--tar-command`: the stream is not tar, or is truncated or damaged.
    case damagedTarStream(description: String, reason: String)

    public var description: String {
        switch self {
        case let .missingPath(p):
            return "source path \(p) does not exist; check the path (is the snapshot volume mounted?); nothing was stored"
        case let .duplicateName(name, paths):
            return "paths \(paths.joined(separator: " and ")) would both be stored as \(name)/; back them up as separate snapshots or give their parent directory"
        case let .commandFailed(command, status, tail):
            return "dump command `\(command)` exited with status \(status); nothing was stored\(Self.tail(tail))"
        case let .commandKilled(command, signal, tail):
            return "dump command `\(command)` was killed by signal \(signal); nothing was stored\(Self.tail(tail))"
        case let .commandNotStarted(command, reason):
            return "cannot run `\(command)`: \(reason); nothing was stored"
        case let .incompleteDump(format, marker):
            return "the \(format.rawValue) stream ends without its completion marker (\(marker)): it is truncated or the dump failed; nothing was stored. Use --format raw only for streams that are not dumps"
        case let .damagedArchive(format, reason):
            return "the \(format.rawValue) stream is truncated or damaged: \(reason); nothing was stored. Check that pg_dump succeeded (pg_restore -f /dev/null FILE reads a whole archive); use --format raw only for streams that are not dumps"
        case let .unsupportedArchive(format, reason):
            return "the \(format.rawValue) stream has \(reason), so its completeness cannot be checked; nothing was stored. Store it with --format raw (unchecked) or use a backstop that reads this version"
        case let .input(reason):
            return "cannot read the input stream: \(reason); nothing was stored"
        case let .emptyStream(description):
            return "\(description) is empty: the dump failed or wrote nothing; nothing was stored. Check the dump command (run it alone and look at its exit status and stderr)"
        case let .unsafeTarEntry(entry, reason):
            return "tar stream entry \(entry) is refused: \(reason); nothing was stored. Check the command that wrote the stream (pg_basebackup -D - -Ft writes none of these)"
        case let .damagedTarStream(description, reason):
            return "\(description) is not a complete tar stream: \(reason); nothing was stored. Check the command that writes it (run it alone and look at its exit status and stderr)"
        case let .formatChanged(source, detected, previous, id):
            return "the stream looks like \(detected.rawValue), but source \(source)'s newest snapshot \(id) is \(previous.rawValue): "
                + "a failing dump often writes something else than a dump; nothing was stored. If the format really changed, pass --format \(detected.rawValue)"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .missingPath: return .noMatch
        case .duplicateName: return .usage
        case .commandFailed, .commandKilled, .commandNotStarted: return .failure
        case .incompleteDump, .damagedArchive, .unsupportedArchive, .emptyStream, .formatChanged, .unsafeTarEntry, .damagedTarStream: return .integrity
        case .input: return .ioError
        }
    }

    private static func tail(_ text: String) -> String {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return t.isEmpty ? "" : "\nlast lines of its stderr:\n" + t
    }
}

import Foundation
