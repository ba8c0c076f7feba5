import Foundation
import GRDB

/// One snapshot as the catalog indexes it: the manifest's fields that listing and selection use.
public struct CatalogSnapshot: Sendable, Equatable {
    public var id: SnapshotID
    public var kind: SnapshotKind
    public var source: String
    public var host: String
    public var tags: [String]
    public var runID: String?
    public var startedAt: Date
    public var completedAt: Date
    public var bytesIn: Int64
    public var bytesStored: Int64
    /// Format 2: the compressed bytes of the frames this snapshot added to the repository.
    public var bytesNew: Int64? = nil
    public var entryCount: Int
    public var warningCount: Int
}

/// What reconciling the catalog with `snapshots/` changed.
public struct ReconcileReport: Sendable, Equatable {
    public var added: [SnapshotID] = []
    public var removed: [SnapshotID] = []
    /// Snapshot folders whose manifest could not be read; they stay out of the catalog.
    public var unreadable: [(id: String, reason: String)] = []
    /// Snapshots with objects but no manifest: a backup at work, or an interrupted backup or
    /// prune (the next writer removes them). Never cataloged.
    public var incomplete: [SnapshotID] = []
    /// Why the catalog could not be brought up to date (a read-only or full repository), if so.
    public var notSaved: String?

    public static func == (a: ReconcileReport, b: ReconcileReport) -> Bool {
        a.added == b.added && a.removed == b.removed && a.unreadable.map(\.id) == b.unreadable.map(\.id)
    }
}

/// The SQLite index of a repository (`catalog.sqlite`), through GRDB.
///
/// Never the source of truth: everything in it can be rebuilt from the manifests
/// (`backstop catalog rebuild`). Migrations are append-only.
///
/// Crash behaviour: SQLite's journal keeps the file consistent; a crash between a snapshot's
/// rename and its insert is repaired by the reconcile that every open runs.
public final class Catalog: @unchecked Sendable {
    let database: DatabaseQueue

    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(30)
        config.label = "catalog"
        database = try DatabaseQueue(path: path, configuration: config)
        // Only migrate when needed: a catalog that is current opens without writing, so a
        // read-only or full repository can still be listed and verified.
        let migrator = Self.migrator
        if try !database.read({ try migrator.hasCompletedMigrations($0) }) {
            try migrator.migrate(database)
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: snapshots") { db in
            try db.create(table: "snapshot") { t in
                t.primaryKey("id", .text)
                t.column("kind", .text).notNull()
                t.column("source", .text).notNull()
                t.column("host", .text).notNull()
                t.column("runID", .text)
                t.column("startedAtMs", .integer).notNull()
                t.column("completedAtMs", .integer).notNull()
                t.column("bytesIn", .integer).notNull()
                t.column("bytesStored", .integer).notNull()
                t.column("entryCount", .integer).notNull()
                t.column("warningCount", .integer).notNull()
            }
            try db.create(index: "snapshot_on_completed", on: "snapshot", columns: ["completedAtMs"])
            try db.create(index: "snapshot_on_source", on: "snapshot", columns: ["source", "completedAtMs"])
            try db.create(table: "snapshotTag") { t in
                t.column("snapshotID", .text).notNull().references("snapshot", onDelete: .cascade)
                t.column("tag", .text).notNull()
                t.primaryKey(["snapshotID", "tag"])
            }
            try db.create(index: "snapshotTag_on_tag", on: "snapshotTag", columns: ["tag"])
        }
        m.registerMigration("v2: verifications and events") { db in
            try db.create(table: "verification") { t in
                t.autoIncrementedPrimaryKey("rowid")
                t.column("snapshotID", .text).notNull().references("snapshot", onDelete: .cascade)
                t.column("atMs", .integer).notNull()
                t.column("mode", .text).notNull()
                t.column("passed", .boolean).notNull()
                t.column("firstProblem", .text)
            }
            try db.create(index: "verification_on_snapshot", on: "verification", columns: ["snapshotID", "atMs"])
            try db.create(table: "event") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull()
                t.column("atMs", .integer).notNull()
                t.column("note", .text)
            }
            try db.create(index: "event_on_name", on: "event", columns: ["name", "atMs"])
        }
        m.registerMigration("v3: meta") { db in
            try db.create(table: "meta") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        m.registerMigration("v4: verification objects") { db in
            // The key of the repository object a verification row mirrors
            // (`verifications/<id>/<name>.json`); NULL for rows written before history was stored.
            try db.alter(table: "verification") { t in t.add(column: "storedAs", .text) }
            try db.create(index: "verification_on_storedAs", on: "verification", columns: ["storedAs"], unique: true)
        }
        m.registerMigration("v5: frame index") { db in
            // Format 2: every frame a cataloged snapshot uses, with its sizes and how many
            // cataloged snapshots use it (`refs`). `framesIndexed` says a snapshot's frames are
            // counted in; both change in the transaction that adds or removes the snapshot.
            try db.create(table: "frame") { t in
                t.primaryKey("id", .blob)
                t.column("uncompressedSize", .integer).notNull()
                t.column("compressedSize", .integer).notNull()
                t.column("refs", .integer).notNull()
            }
            try db.alter(table: "snapshot") { t in
                t.add(column: "framesIndexed", .integer).notNull().defaults(to: 0)
                t.add(column: "bytesNew", .integer)
            }
            // Every open asks for the snapshots not counted in yet: none, almost always.
            try db.execute(sql: "CREATE INDEX snapshot_unindexed ON snapshot(id) WHERE framesIndexed = 0")
        }
        m.registerMigration("v6: log segments", migrate: Catalog.createLogSegments)
        return m
    }

    /// Adds or replaces a snapshot's row from its manifest.
    public func insert(_ manifest: Manifest) throws {
        try database.write { db in try Self.insert(manifest, db) }
    }

    private static func insert(_ m: Manifest, _ db: Database) throws {
        // Replaces the row's fields and tags, keeping its frame counts (`framesIndexed`) and history.
        try db.execute(sql: "DELETE FROM snapshotTag WHERE snapshotID = ?", arguments: [m.id.rawValue])
        try db.execute(
            sql: """
            INSERT INTO snapshot (id, kind, source, host, runID, startedAtMs, completedAtMs, bytesIn, bytesStored, bytesNew, entryCount, warningCount)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, source = excluded.source, host = excluded.host,
                runID = excluded.runID, startedAtMs = excluded.startedAtMs, completedAtMs = excluded.completedAtMs,
                bytesIn = excluded.bytesIn, bytesStored = excluded.bytesStored, bytesNew = excluded.bytesNew,
                entryCount = excluded.entryCount, warningCount = excluded.warningCount
            """,
            arguments: [m.id.rawValue, m.kind.rawValue, m.source, m.host, m.runID?.rawValue,
                        millis(m.startedAt), millis(m.completedAt), m.bytesIn, m.bytesStored, m.bytesNew,
                        m.entryCount, m.warningTotal])
        for tag in Set(m.tags) {
            try db.execute(sql: "INSERT INTO snapshotTag (snapshotID, tag) VALUES (?, ?)", arguments: [m.id.rawValue, tag])
        }
    }

    public func remove(_ id: SnapshotID) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM snapshot WHERE id = ?", arguments: [id.rawValue])
        }
    }

    /// Every snapshot, oldest first.
    public func snapshots() throws -> [CatalogSnapshot] {
        try database.read { db in
            var tags: [String: [String]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT snapshotID, tag FROM snapshotTag ORDER BY tag") {
                tags[row["snapshotID"], default: []].append(row["tag"])
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM snapshot ORDER BY completedAtMs, id").compactMap { row in
                Catalog.snapshot(row).map { s in
                    var s = s
                    s.tags = tags[s.id.rawValue] ?? []
                    return s
                }
            }
        }
    }

    public func snapshotIDs() throws -> Set<SnapshotID> {
        try database.read { db in
            Set(try String.fetchAll(db, sql: "SELECT id FROM snapshot").compactMap(SnapshotID.init))
        }
    }

    /// Makes the catalog agree with the snapshot folders: adds what is missing, drops what is gone.
    public func reconcile(folders: [SnapshotID], manifest: (SnapshotID) throws -> Manifest) throws -> ReconcileReport {
        let known = try snapshotIDs()
        let present = Set(folders)
        var report = ReconcileReport()
        var toAdd: [Manifest] = []
        for id in folders where !known.contains(id) {
            do {
                toAdd.append(try manifest(id))
                report.added.append(id)
            } catch {
                report.unreadable.append((id.rawValue, String(describing: error)))
            }
        }
        report.removed = known.subtracting(present).sorted()
        if toAdd.isEmpty && report.removed.isEmpty { return report }
        try database.write { db in
            for m in toAdd { try Self.insert(m, db) }
            for id in report.removed {
                try db.execute(sql: "DELETE FROM snapshot WHERE id = ?", arguments: [id.rawValue])
            }
        }
        return report
    }

    static func millis(_ d: Date) -> Int64 { d.millisecondsSince1970 }
    static func date(_ ms: Int64) -> Date { Date(millisecondsSince1970: ms) }
}

extension Catalog {
    /// Closes the database (used before the catalog file is replaced).
    func close() throws {
        try database.close()
    }
}

extension Catalog {
    func meta(_ key: String) throws -> String? {
        try database.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    func setMeta(_ key: String, _ value: String) throws {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }
}

extension Catalog {
    /// What a SQLite failure means for a user, without SQLite's numbers: a full disk, a read-only
    /// repository, a damaged file (with the next step).
    /// True for failures to write (full disk, read-only or unwritable files), as opposed to a
    /// damaged catalog.
    public static func isUnwritable(_ error: Error) -> Bool {
        guard let db = error as? DatabaseError else { return false }
        return [.SQLITE_FULL, .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_IOERR].contains(db.resultCode)
    }

    public static func explain(_ error: Error) -> String {
        guard let db = error as? DatabaseError else { return "\(error)" }
        switch db.resultCode {
        case .SQLITE_FULL: return "the disk is full (free some space)"
        case .SQLITE_READONLY: return "the repository is read-only"
        case .SQLITE_PERM, .SQLITE_AUTH: return "permission denied"
        case .SQLITE_CANTOPEN: return "the file cannot be opened (check the repository's permissions)"
        case .SQLITE_IOERR: return "an I/O error (\(db.message ?? "unknown"))"
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return "the file is damaged or not a catalog; it is only an index: rebuild it with `backstop catalog rebuild`"
        case .SQLITE_BUSY, .SQLITE_LOCKED: return "another process keeps it busy; try again"
        default: return db.message ?? "\(db)"
        }
    }
}
