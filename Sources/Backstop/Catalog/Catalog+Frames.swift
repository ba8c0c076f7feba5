import Foundation
import GRDB

/// The frame index (format 2): each frame a cataloged snapshot uses, its sizes, and how many
/// cataloged snapshots use it. Kept in SQLite, never in memory: a snapshot's frames pass through
/// a temporary table that removes the repeats within it.
///
/// Invariant: `refs` counts exactly the snapshots with `framesIndexed = 1` that list the frame;
/// a snapshot is counted in (or out) in the same transaction that sets (or clears) the flag. When
/// a snapshot row is dropped without its frame list (the list was gone), its frames keep a count
/// too high: never too low, so the index never calls a frame unused that a snapshot lists.
extension Catalog {
    /// Counts `frames` in for `snapshot`, once (nothing happens if it is counted already or not
    /// cataloged).
    public func indexFrames(_ snapshot: SnapshotID, _ frames: [FrameRef]) throws {
        try database.write { db in
            guard try Int.fetchOne(db, sql: "SELECT framesIndexed FROM snapshot WHERE id = ?", arguments: [snapshot.rawValue]) == 0 else { return }
            try Self.loadDistinct(frames, into: db)
            try db.execute(sql: """
                INSERT INTO frame (id, uncompressedSize, compressedSize, refs)
                SELECT id, uncompressedSize, compressedSize, 1 FROM temp.snapshotFrames WHERE true
                ON CONFLICT(id) DO UPDATE SET refs = refs + 1
                """)
            try db.execute(sql: "DROP TABLE temp.snapshotFrames")
            try db.execute(sql: "UPDATE snapshot SET framesIndexed = 1 WHERE id = ?", arguments: [snapshot.rawValue])
        }
    }

    /// Counts `frames` out for `snapshot` and drops its row, in one transaction.
    public func removeIndexed(_ snapshot: SnapshotID, _ frames: [FrameRef]?) throws {
        try database.write { db in
            if let frames, try Int.fetchOne(db, sql: "SELECT framesIndexed FROM snapshot WHERE id = ?", arguments: [snapshot.rawValue]) == 1 {
                try Self.loadDistinct(frames, into: db)
                try db.execute(sql: "UPDATE frame SET refs = refs - 1 WHERE id IN (SELECT id FROM temp.snapshotFrames)")
                try db.execute(sql: "DROP TABLE temp.snapshotFrames")
            }
            try db.execute(sql: "DELETE FROM snapshot WHERE id = ?", arguments: [snapshot.rawValue])
        }
    }

    private static func loadDistinct(_ frames: [FrameRef], into db: Database) throws {
        try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS snapshotFrames (id BLOB PRIMARY KEY, uncompressedSize INTEGER, compressedSize INTEGER)")
        try db.execute(sql: "DELETE FROM temp.snapshotFrames")
        let insert = try db.makeStatement(sql: "INSERT OR IGNORE INTO temp.snapshotFrames VALUES (?, ?, ?)")
        for f in frames {
            try insert.execute(arguments: [Data(f.id.bytes), f.uncompressedSize, f.compressedSize])
        }
    }

    /// The sizes of a frame some cataloged snapshot uses, or nil.
    public func frameSizes(_ id: SHA256Digest) throws -> (uncompressed: Int, compressed: Int)? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT uncompressedSize, compressedSize FROM frame WHERE id = ? AND refs > 0", arguments: [Data(id.bytes)])
                .map { ($0["uncompressedSize"], $0["compressedSize"]) }
        }
    }

    /// Cataloged snapshots whose frames are not counted in yet.
    public func unindexedSnapshots() throws -> [SnapshotID] {
        try database.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM snapshot WHERE framesIndexed = 0 ORDER BY id").compactMap(SnapshotID.init)
        }
    }

    /// Of the frames stored under one `frames/<ab>/` folder, those some cataloged snapshot uses.
    func usedFrames(among ids: [SHA256Digest]) throws -> Set<SHA256Digest> {
        try database.read { db in
            var used = Set<SHA256Digest>()
            let statement = try db.makeStatement(sql: "SELECT 1 FROM frame WHERE id = ? AND refs > 0")
            for id in ids where try Int.fetchOne(statement, arguments: [Data(id.bytes)]) != nil { used.insert(id) }
            return used
        }
    }

    /// Drops index rows of frames no cataloged snapshot uses (after their objects were swept).
    func dropUnusedFrames() throws {
        try database.write { db in try db.execute(sql: "DELETE FROM frame WHERE refs <= 0") }
    }

    /// The compressed bytes of the frames that only `snapshots` use: what removing them frees.
    public func bytesOnlyUsed(by snapshots: [SnapshotID: [FrameRef]]) throws -> (frames: Int, bytes: Int64) {
        try database.write { db in
            try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS doomedFrames (id BLOB PRIMARY KEY, uses INTEGER NOT NULL)")
            try db.execute(sql: "DELETE FROM temp.doomedFrames")
            for (id, frames) in snapshots {
                guard try Int.fetchOne(db, sql: "SELECT framesIndexed FROM snapshot WHERE id = ?", arguments: [id.rawValue]) == 1 else { continue }
                try Self.loadDistinct(frames, into: db)
                try db.execute(sql: """
                    INSERT INTO temp.doomedFrames (id, uses) SELECT id, 1 FROM temp.snapshotFrames WHERE true
                    ON CONFLICT(id) DO UPDATE SET uses = uses + 1
                    """)
            }
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS n, COALESCE(SUM(f.compressedSize), 0) AS bytes
                FROM temp.doomedFrames d JOIN frame f ON f.id = d.id WHERE f.refs <= d.uses
                """)
            try db.execute(sql: "DROP TABLE IF EXISTS temp.doomedFrames")
            try db.execute(sql: "DROP TABLE IF EXISTS temp.snapshotFrames")
            return (row?["n"] ?? 0, row?["bytes"] ?? 0)
        }
    }

    /// Distinct frames in use and their compressed bytes.
    public func frameTotals() throws -> (frames: Int, compressed: Int64, uncompressed: Int64) {
        try database.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, COALESCE(SUM(compressedSize), 0) AS c, COALESCE(SUM(uncompressedSize), 0) AS u FROM frame WHERE refs > 0")
            return (row?["n"] ?? 0, row?["c"] ?? 0, row?["u"] ?? 0)
        }
    }
}
