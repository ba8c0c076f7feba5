import Foundation

/// What kind of change log a log source archives.
public enum LogKind: String, Codable, Sendable, CaseIterable {
    /// MariaDB/MySQL binary logs (`mysql-bin.000042`), read for times, positions and GTIDs.
    case mysqlBinlog = "mysql-binlog"
    /// PostgreSQL WAL segments and history files, stored as they are.
    case pgWAL = "pg-wal"
}

/// One archived log file: `logs/<source>/<object>.zst` (its bytes, one zstd frame) and
/// `logs/<source>/<object>.json` (this record; written last, its presence is the commit).
///
/// A *partial* segment is the start of a binlog file that was still open when it was archived
/// (`logs follow` archives the open file at each flush interval); its object name is
/// `<file>.partial.<length>`. The whole file, once closed and archived, supersedes it, and the
/// partial ones are then removed.
public struct LogSegment: Codable, Sendable, Equatable {
    public var source: String
    public var kind: LogKind
    /// The log file's own name (`mysql-bin.000042`, `000000010000000000000003`).
    public var name: String
    /// True for the start of a file still open when archived.
    public var partial: Bool
    /// Uncompressed bytes, and their SHA-256 (what `sha256sum` of the original file prints).
    public var size: Int64
    public var sha256: SHA256Digest
    /// Bytes of the stored object (compressed).
    public var storedSize: Int64
    public var archivedAt: Date
    /// Binlogs: times of the first and last events, start and end positions (`file:pos`), the
    /// GTID state at the start and after the last event, the next file when closed by a rotate.
    public var firstEventAt: Date?
    public var lastEventAt: Date?
    public var startPosition: String?
    public var endPosition: String?
    public var gtidStart: String?
    public var gtidEnd: String?
    public var closed: Bool?
    public var nextFile: String?

    /// The name of its objects below `logs/<source>/` (without `.zst`/`.json`).
    public var objectName: String { partial ? "\(name).partial.\(size)" : name }

    /// The segment's end as an offset in its file (binlogs: the end of its last whole event).
    public var endOffset: Int64 { size }
}

/// Why a log command stopped.
public enum LogError: Error, CustomStringConvertible, ExitStatusProviding {
    case corruptSegment(name: String, reason: String)
    /// A segment of that name is archived with other bytes: nothing was replaced.
    case conflictingSegment(source: String, name: String, stored: SHA256Digest, given: SHA256Digest)
    case notFound(source: String, name: String)
    case unreadableFile(path: String, reason: String)
    case badName(String)
    /// The chain of segments has gaps or corrupt segments (`logs check`).
    case chainBroken(source: String, problems: [String])
    /// A point-in-time restore cannot reach its target: a gap between the snapshot and T.
    case gap(source: String, gap: String, reachable: Date?, until: Date)
    case noSegments(source: String, hint: String)
    case toolFailed(command: String, status: Int32, stderr: String)
    case snapshotHasNoPosition(snapshot: SnapshotID)
    case notAPostgresDataDirectory(String)

    public var description: String {
        switch self {
        case let .corruptSegment(name, reason):
            return "log segment \(name) is corrupt: \(reason)"
        case let .conflictingSegment(source, name, stored, given):
            return "log segment \(name) is already archived in logs/\(source)/ with other content (stored sha256 \(stored.hex), this file \(given.hex)); nothing was replaced: find out why the server wrote a different file under the same name (a reset or restored server?) and archive it into another --source"
        case let .notFound(source, name):
            return "no log segment \(name) in logs/\(source)/ (backstop logs list --source \(source) shows what is archived)"
        case let .unreadableFile(path, reason):
            return "cannot read \(path): \(reason)"
        case let .badName(name):
            return "\(name) cannot be a log segment's name (it must be a plain file name without '/')"
        case let .chainBroken(source, problems):
            return "the log chain of \(source) is broken:\n  " + problems.joined(separator: "\n  ")
                + "\npoint-in-time restores cannot cross these; archive the missing files again if the server still has them (backstop logs push), or take a new dump"
        case let .gap(source, gap, reachable, until):
            let reach = reachable.map { "the latest moment it can reach is \(Timestamp.format($0)); restore --until that time or earlier" } ?? "it can reach no moment after the snapshot"
            return "cannot restore to \(Timestamp.format(until)): the log chain of \(source) has a gap: \(gap); \(reach), or archive the missing segment (backstop logs push)"
        case let .noSegments(source, hint):
            return "no log segments archived for \(source): \(hint)"
        case let .toolFailed(command, status, stderr):
            return "`\(command)` failed (exit \(status)): \(stderr)"
        case let .notAPostgresDataDirectory(path):
            return "the restored snapshot in \(path) holds no PostgreSQL data directory (no PG_VERSION in it or in one folder below it): --until on a filesystem snapshot needs a base backup (pg_basebackup -D DIR -X none, then backstop backup DIR --source pg-base)"
        case let .snapshotHasNoPosition(id):
            return "snapshot \(id) records no binlog position, so the binlog cannot be replayed from it: take dumps with `mariadb-dump --master-data=2` (or --source-data=2) for point-in-time restores"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .corruptSegment, .conflictingSegment, .chainBroken, .gap: return .integrity
        case .notFound, .noSegments, .snapshotHasNoPosition, .notAPostgresDataDirectory: return .noMatch
        case .unreadableFile: return .ioError
        case .badName: return .usage
        case .toolFailed: return .failure
        }
    }
}
