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
    /// `storedAs` is the key of the repository object that holds it, if it was stored.
    @discardableResult
    public func recordIfCataloged(_ result: VerificationResult, storedAs: StorageKey? = nil) throws -> Bool {
        try Interruption.check()
        return try database.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM snapshot WHERE id = ?", arguments: [result.snapshot.rawValue]) != nil else {
                return false
            }
            try Self.insert(result, storedAs: storedAs, into: db)
            return true
        }
    }

    /// The one INSERT of a verification row.
    private static func insert(_ result: VerificationResult, storedAs: StorageKey? = nil, into db: Database) throws {
        try db.execute(
            sql: "INSERT INTO verification (snapshotID, atMs, mode, passed, firstProblem, storedAs) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [result.snapshot.rawValue, Catalog.millis(result.startedAt), result.mode.rawValue,
                        result.passed, result.problems.first.map(String.init(describing:)), storedAs?.rawValue])
    }

    /// The repository objects the catalog's verification rows mirror.
    func storedVerificationKeys() throws -> Set<String> {
        try database.read { db in Set(try String.fetchAll(db, sql: "SELECT storedAs FROM verification WHERE storedAs IS NOT NULL")) }
    }

    /// Adds verifications read from the repository (rows for snapshots not in the catalog are
    /// left out), in one transaction.
    func importVerifications(_ stored: [(key: StorageKey, record: VerificationRecord)]) throws {
        guard !stored.isEmpty else { return }
        try database.write { db in
            for (key, r) in stored {
                guard try Int.fetchOne(db, sql: "SELECT 1 FROM snapshot WHERE id = ?", arguments: [r.snapshot.rawValue]) != nil else { continue }
                try db.execute(
                    sql: "INSERT INTO verification (snapshotID, atMs, mode, passed, firstProblem, storedAs) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [r.snapshot.rawValue, Catalog.millis(r.at), r.mode.rawValue, r.passed, r.firstProblem, key.rawValue])
            }
        }
    }

    /// Verification rows written before the history was stored in the repository.
    func unstoredVerifications() throws -> [(rowid: Int64, record: VerificationRecord)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT rowid, snapshotID, atMs, mode, passed, firstProblem FROM verification WHERE storedAs IS NULL ORDER BY rowid")
                .compactMap { row in
                    guard let id = SnapshotID(row["snapshotID"]), let mode = VerificationMode(rawValue: row["mode"]) else { return nil }
                    return (row["rowid"], VerificationRecord(snapshot: id, at: Catalog.date(row["atMs"]), mode: mode,
                                                            passed: row["passed"], firstProblem: row["firstProblem"]))
                }
        }
    }

    func markStored(rowid: Int64, as key: StorageKey) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE verification SET storedAs = ? WHERE rowid = ?", arguments: [key.rawValue, rowid])
        }
    }

    /// Snapshots that passed a full verification at least once: their structure (tar or sections
    /// against the entry list and manifest) is proven for as long as their files and frames keep
    /// their digests.
    public func structureVerified() throws -> Set<SnapshotID> {
        try database.read { db in
            Set(try String.fetchAll(db, sql: "SELECT DISTINCT snapshotID FROM verification WHERE mode = 'full' AND passed = 1").compactMap(SnapshotID.init))
        }
    }

    /// Each snapshot's most recent verification.
    public func lastVerifications() throws -> [SnapshotID: VerificationRecord] {
        try database.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT v.snapshotID, v.atMs, v.mode, v.passed, v.firstProblem FROM verification v
                WHERE v.rowid = (SELECT w.rowid FROM verification w WHERE w.snapshotID = v.snapshotID
                                 ORDER BY w.atMs DESC, w.rowid DESC LIMIT 1)
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
