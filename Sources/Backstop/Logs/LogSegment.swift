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
/// A *partial* segment is part of a binlog file that was still open when it was archived
/// (`logs follow` archives the open file at each flush interval): the bytes from `offset` (absent:
/// the file's start) to `endOffset`, only what the earlier parts of the file do not hold, so each
/// interval stores what is new. Its object name is `<file>.partial.<end>`; its times, positions
/// and GTIDs describe the file from its start to that end. The parts of a file chain from byte 0
/// (each starts where one ends). The whole file, once closed and archived, supersedes them, and
/// they are then removed.
public struct LogSegment: Codable, Sendable, Equatable {
    public var source: String
    public var kind: LogKind
    /// The log file's own name (`mysql-bin.000042`, `000000010000000000000003`).
    public var name: String
    /// True for a part of a file still open when archived.
    public var partial: Bool
    /// A partial segment after the file's first part: where its bytes start in the file.
    public var offset: Int64?
    /// Uncompressed bytes, and their SHA-256 (what `sha256sum` of the original file prints; of
    /// a part, of its bytes).
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
    /// Binlogs: how many changes were logged as SQL statements (binlog_format STATEMENT or MIXED)
    /// rather than as rows, and the first of them (absent when none: ROW format).
    public var statementEvents: Int?
    public var statementExample: String?

    /// Why a restore of one database over this segment may be wrong, if it may.
    public var statementWarning: String? {
        guard let n = statementEvents, n > 0 else { return nil }
        return "\(name) holds \(n) change(s) logged as SQL statements, not rows (binlog_format STATEMENT or MIXED), e.g. \(statementExample ?? "?"): a replay filtered to one database (--database) picks statements by the session's default database, not by the tables they change, so a statement of another database may be replayed into this one and one of this database run from another may be missed; statements also re-run NOW(), UUID() and the like; set binlog_format=ROW on the server"
    }

    /// The name of its objects below `logs/<source>/` (without `.zst`/`.json`).
    public var objectName: String { partial ? "\(name).partial.\(endOffset)" : name }

    /// The segment's end as an offset in its file (binlogs: the end of its last whole event).
    public var endOffset: Int64 { (offset ?? 0) + size }
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
