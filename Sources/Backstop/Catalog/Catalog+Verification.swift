import Foundation
import GRDB

extension Catalog {
    /// Appends a verification to the snapshot's history.
    /// Refused once the process was interrupted: a check cut short proves nothing about the snapshot.
    public func record(_ result: VerificationResult) throws {
        try Interruption.check()
        try database.write { db in try Self.insert(result, into: db) }
    }

    /// Appends a verification to the snapshot's history if the snapshot is in the catalog; returns
    /// false when it is not (its manifest could not be read when the catalog was built).
    @discardableResult
    public func recordIfCataloged(_ result: VerificationResult) throws -> Bool {
        try Interruption.check()
        return try database.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM snapshot WHERE id = ?", arguments: [result.snapshot.rawValue]) != nil else {
                return false
            }
            try Self.insert(result, into: db)
            return true
        }
    }

    /// The one INSERT of a verification row.
    private static func insert(_ result: VerificationResult, into db: Database) throws {
        try db.execute(
            sql: "INSERT INTO verification (snapshotID, atMs, mode, passed, firstProblem) VALUES (?, ?, ?, ?, ?)",
            arguments: [result.snapshot.rawValue, Catalog.millis(result.startedAt), result.mode.rawValue,
                        result.passed, result.problems.first.map(String.init(describing:))])
    }

    /// Each snapshot's most recent verification.
    public func lastVerifications() throws -> [SnapshotID: VerificationRecord] {
        try database.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT v.snapshotID, v.atMs, v.mode, v.passed, v.firstProblem FROM verification v
                JOIN (SELECT snapshotID, MAX(rowid) AS last FROM verification GROUP BY snapshotID) l ON v.rowid = l.last
                """)
            var out: [SnapshotID: VerificationRecord] = [:]
            for row in rows {
                guard let id = SnapshotID(row["snapshotID"]), let mode = VerificationMode(rawValue: row["mode"]) else { continue }
                out[id] = VerificationRecord(snapshot: id, at: Catalog.date(row["atMs"]), mode: mode,
                                             passed: row["passed"], firstProblem: row["firstProblem"])
            }
            return out
        }
    }

    /// The `count` snapshots verified longest ago, never-verified first (oldest snapshot first among them).
    public func leastRecentlyVerified(_ count: Int) throws -> [SnapshotID] {
        try database.read { db in
            try String.fetchAll(db, sql: """
                SELECT s.id FROM snapshot s
                LEFT JOIN (SELECT snapshotID, MAX(atMs) AS lastMs FROM verification GROUP BY snapshotID) v ON v.snapshotID = s.id
                ORDER BY COALESCE(v.lastMs, -1), s.id
                LIMIT ?
                """, arguments: [count]).compactMap(SnapshotID.init)
        }
    }
}
