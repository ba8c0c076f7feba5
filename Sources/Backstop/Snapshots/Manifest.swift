import Foundation

/// Whether a snapshot holds a directory tree or a byte stream.
public enum SnapshotKind: String, Codable, Sendable, CaseIterable {
    case filesystem
    case logical
}

/// The format of a logical snapshot's stream, which decides how it is split into sections.
public enum DumpFormat: String, Codable, Sendable, CaseIterable {
    case mysqldump
    case pgdump
    case pgdumpall
    /// pg_dump's custom format (`-Fc`), checked and split by `PgCustomScanner`.
    case pgdumpCustom = "pgdump-custom"
    /// pg_dump's tar format (`-Ft`), checked and split by `PgTarScanner`.
    case pgdumpTar = "pgdump-tar"
    case raw
}

/// A named piece of a logical snapshot's stream: the preamble, one database or table, the trailer.
public struct Section: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case preamble, database, table, other, trailer
    }

    public var name: String
    public var kind: Kind
    public var offset: Int64
    public var length: Int64
    public var sha256: SHA256Digest
    /// pg_dump formats only: the digest with the random keys of `\restrict KEY` and
    /// `\unrestrict KEY` lines left out, so that unchanged data has an unchanged digest and `diff`
    /// can compare sections of two dumps. Nil where it would equal `sha256`'s purpose (mysqldump).
    public var contentSHA256: SHA256Digest?

    public init(name: String, kind: Kind, offset: Int64, length: Int64, sha256: SHA256Digest, contentSHA256: SHA256Digest? = nil) {
        self.name = name
        self.kind = kind
        self.offset = offset
        self.length = length
        self.sha256 = sha256
        self.contentSHA256 = contentSHA256
    }

    /// The digest that says whether two sections hold the same data.
    public var comparableDigest: SHA256Digest { contentSHA256 ?? sha256 }
}

/// One stored file of a snapshot folder, with its size and digest.
public struct StoredFile: Codable, Sendable, Equatable {
    public var name: String
    public var size: Int64
    public var sha256: SHA256Digest
}

/// A snapshot's summary, `snapshots/<id>/manifest.json`. Key names are stable.
public struct Manifest: Codable, Sendable, Equatable {
    /// The format this version writes: 2, content-addressed frames. Format 1 (one payload file
    /// per snapshot) is read only by `backstop migrate`.
    public static let currentFormat = 2

    public var format: Int
    public var id: SnapshotID
    public var kind: SnapshotKind
    public var source: String
    public var host: String
    public var tags: [String]
    /// Shared by the snapshots one `backstop run` takes.
    public var runID: RunID?
    /// The paths a filesystem snapshot was taken of, as given.
    public var paths: [String]
    /// The format of a logical snapshot's stream.
    public var dumpFormat: DumpFormat?
    public var startedAt: Date
    public var completedAt: Date
    /// Uncompressed bytes: the tar stream or the dump.
    public var bytesIn: Int64
    /// Stored bytes the snapshot uses: its frames (shared or not) and its own files.
    public var bytesStored: Int64
    /// Format 2: compressed bytes of the frames this snapshot added to the repository.
    public var bytesNew: Int64?
    /// Format 2: how many frames the payload has, and how many of them were new.
    public var frameCount: Int?
    public var framesNew: Int?
    public var entryCount: Int
    /// Filesystem snapshots with the files cache and a parent: how many regular files were not
    /// read, their frames reused from the parent. Absent without a parent or with the cache off.
    public var filesReused: Int?
    /// Digest of the whole uncompressed stream. Format 2: absent when the files cache reused
    /// frames without reading them (the frames' IDs, checked against `frames.tsv`, cover the
    /// stream then).
    public var sha256: SHA256Digest?
    /// Format 1: the payload's zstd frames (format 2 lists them in `frames.tsv`).
    public var frames: [FrameInfo]?
    public var sections: [Section]
    /// The snapshot's own stored files, with their sizes and digests: format 2, `frames.tsv`
    /// and the entry list; format 1, the payload and the entry list.
    public var files: [StoredFile]
    public var warnings: [String]
    public var toolVersion: String
    /// mysqldump taken with `--master-data=2`/`--source-data=2` (and `--gtid`): the binlog
    /// position its data is consistent with, where a point-in-time restore starts replaying.
    public var binlogPosition: BinlogPosition? = nil
    /// A PostgreSQL base backup taken from a tar stream (`backup --tar-command 'pg_basebackup -D -
    /// -Ft …'`): the positions its `backup_label` (and `backup_manifest`) hold.
    public var postgresBackup: PostgresBaseBackup? = nil
    /// A hot physical backup (`backup --mariabackup`): versions, binlog position and GTID (also
    /// in `binlogPosition`), Galera state, and that the copy needs `restore --prepare`.
    public var physicalBackup: PhysicalBackup? = nil
    /// Encrypted repositories: the private part of the manifest (`ManifestPrivate`: paths,
    /// dump format, stream digest, sections, warnings, binlog position, base backup positions)
    /// as a base64 age file encrypted to the repository's recipients. Those fields are empty in
    /// the readable part then. Read with an identity, a manifest has them back and this is nil;
    /// without one it stays set: what needs those fields asks for an identity (77).
    public var sealed: String? = nil
    /// With `sealed`: how many warnings the sealed part holds.
    public var warningCount: Int? = nil

    /// Whether the private part is sealed and could not be read here (no identity).
    public var isSealed: Bool { sealed != nil }

    /// The number of warnings, sealed or not.
    public var warningTotal: Int { warningCount ?? warnings.count }

    /// The payload as messages name it: format 1, its file in the snapshot folder; format 2,
    /// the frames listed in `frames.tsv`.
    public var payloadName: String {
        if format >= 2 { return "frames.tsv" }
        return kind == .filesystem ? "data.tar.zst" : "data.zst"
    }

    /// The name of the payload as a single file (`backstop export`, format 1's folder).
    public var exportName: String { kind == .filesystem ? "data.tar.zst" : "data.zst" }
}

/// The fields of a manifest that an encrypted repository keeps encrypted (`Manifest.sealed`):
/// they name what was backed up (paths, databases, tables, files in warnings) or allow guessing
/// content (digests). Key names are stable, the manifest's own.
public struct ManifestPrivate: Codable, Sendable, Equatable {
    public var paths: [String]
    public var dumpFormat: DumpFormat?
    public var sha256: SHA256Digest?
    public var sections: [Section]
    public var warnings: [String]
    public var binlogPosition: BinlogPosition?
    public var postgresBackup: PostgresBaseBackup?
    /// A mariadb-backup snapshot's record (binlog position, GTID, Galera state, versions).
    public var physicalBackup: PhysicalBackup?

    init(of m: Manifest) {
        paths = m.paths
        dumpFormat = m.dumpFormat
        sha256 = m.sha256
        sections = m.sections
        warnings = m.warnings
        binlogPosition = m.binlogPosition
        postgresBackup = m.postgresBackup
        physicalBackup = m.physicalBackup
    }
}

extension Manifest {
    /// The readable part: the private fields emptied, `sealed` holding them encrypted.
    func sealing(_ sealed: String) -> Manifest {
        var m = self
        m.warningCount = warnings.count
        m.paths = []
        m.dumpFormat = nil
        m.sha256 = nil
        m.sections = []
        m.warnings = []
        m.binlogPosition = nil
        m.postgresBackup = nil
        m.physicalBackup = nil
        m.sealed = sealed
        return m
    }

    /// The whole manifest, the private part put back.
    func unsealing(_ p: ManifestPrivate) -> Manifest {
        var m = self
        m.paths = p.paths
        m.dumpFormat = p.dumpFormat
        m.sha256 = p.sha256
        m.sections = p.sections
        m.warnings = p.warnings
        m.binlogPosition = p.binlogPosition
        m.postgresBackup = p.postgresBackup
        m.physicalBackup = p.physicalBackup
        m.sealed = nil
        m.warningCount = nil
        return m
    }
}

/// What a PostgreSQL base backup's `backup_label` says (and, when the stream holds one, the
/// stop position from `backup_manifest`'s `WAL-Ranges`). Key names are stable.
public struct PostgresBaseBackup: Codable, Sendable, Equatable {
    /// START WAL LOCATION: the LSN recovery starts from, and its WAL file.
    public var startLSN: String?
    public var startWALFile: String?
    /// CHECKPOINT LOCATION.
    public var checkpointLSN: String?
    /// START TIMELINE.
    public var startTimeline: Int?
    /// LABEL (pg_basebackup's `-l`).
    public var label: String?
    /// START TIME, as the server wrote it (`2024-03-25 01:00:00 UTC`).
    public var startTime: String?
    /// The LSN the backup ends at (`End-LSN` of the last `WAL-Ranges` item of `backup_manifest`),
    /// when the stream holds a manifest: recovery must replay WAL at least to here.
    public var stopLSN: String?

    public init() {}

    /// Parses a `backup_label`'s lines; nil when none of its keys is there.
    public static func parse(label text: String) -> PostgresBaseBackup? {
        var b = PostgresBaseBackup()
        var found = false
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "START WAL LOCATION":
                // `0/2000028 (file 000000010000000000000002)`
                let parts = value.split(separator: " ", maxSplits: 1)
                b.startLSN = parts.first.map(String.init)
                if parts.count > 1 {
                    b.startWALFile = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "()"))
                        .replacingOccurrences(of: "file ", with: "")
                }
                found = true
            case "CHECKPOINT LOCATION": b.checkpointLSN = value; found = true
            case "START TIMELINE": b.startTimeline = Int(value); found = true
            case "LABEL": b.label = value; found = true
            case "START TIME": b.startTime = value; found = true
            default: break
            }
        }
        return found ? b : nil
    }

    /// The `End-LSN` of the last item of a `backup_manifest`'s `WAL-Ranges`, if any.
    public static func stopLSN(manifest json: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
              let ranges = object["WAL-Ranges"] as? [[String: Any]], let last = ranges.last else { return nil }
        return last["End-LSN"] as? String
    }
}
