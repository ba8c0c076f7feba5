import Foundation
import GRDB

extension Catalog {
    /// Runs a selection against the catalog: filters and time bounds in SQL (indexed), verdicts
    /// in `Selector`. Reads only the candidates near the cutoff, so it stays fast with 100,000
    /// snapshots.
    public func select(_ criteria: SelectionCriteria, fallbackLimit: Int = 10, listLimit: Int = 10) throws -> SelectionResult {
        try database.read { db in
            var filters: [String] = []
            var args: [DatabaseValueConvertible?] = []
            if let source = criteria.source { filters.append("s.source = ?"); args.append(source) }
            if let kind = criteria.kind { filters.append("s.kind = ?"); args.append(kind.rawValue) }
            if let host = criteria.host { filters.append("s.host = ?"); args.append(host) }
            if !criteria.tags.isEmpty {
                let marks = Array(repeating: "?", count: criteria.tags.count).joined(separator: ", ")
                filters.append("s.id IN (SELECT snapshotID FROM snapshotTag WHERE tag IN (\(marks)) GROUP BY snapshotID HAVING COUNT(DISTINCT tag) = \(Set(criteria.tags).count))")
                args += criteria.tags.map { $0 as DatabaseValueConvertible? }
            }
            let filterSQL = filters.isEmpty ? "1" : filters.joined(separator: " AND ")
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM snapshot") ?? 0
            let matching = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM snapshot s WHERE \(filterSQL)", arguments: StatementArguments(args)) ?? 0

            var cutoffSQL = "1"
            var cutoffArgs: [DatabaseValueConvertible?] = []
            var tooNew: [CatalogSnapshot] = []
            var tooNewCount = 0
            var cutoff: Date?
            switch criteria.point {
            case let .at(t): cutoff = t; cutoffSQL = "s.completedAtMs <= ?"; cutoffArgs = [Catalog.millis(t)]
            case let .before(t, _): cutoff = t; cutoffSQL = "s.completedAtMs < ?"; cutoffArgs = [Catalog.millis(t)]
            case .latest: break
            }
            if cutoff != nil {
                let newer = cutoffSQL.replacingOccurrences(of: "<=", with: ">").replacingOccurrences(of: "<", with: ">=")
                tooNewCount = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM snapshot s WHERE \(filterSQL) AND \(newer)",
                                               arguments: StatementArguments(args + cutoffArgs)) ?? 0
                tooNew = try Self.rows(db, "SELECT s.* FROM snapshot s WHERE \(filterSQL) AND \(newer) ORDER BY s.completedAtMs ASC, s.id ASC LIMIT \(listLimit)",
                                       args + cutoffArgs).map(\.0)
            }
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT s.*, v.atMs AS vAtMs, v.mode AS vMode, v.passed AS vPassed, v.firstProblem AS vProblem
                FROM snapshot s
                LEFT JOIN (SELECT snapshotID, MAX(rowid) AS last FROM verification GROUP BY snapshotID) l ON l.snapshotID = s.id
                LEFT JOIN verification v ON v.rowid = l.last
                WHERE \(filterSQL) AND \(cutoffSQL)
                ORDER BY s.completedAtMs DESC, s.id DESC
                """, arguments: StatementArguments(args + cutoffArgs))
            var older: [(CatalogSnapshot, VerificationRecord?)] = []
            var acceptable = 0
            while let row = try cursor.next() {
                guard let snapshot = Self.snapshot(row) else { continue }
                var verification: VerificationRecord?
                let modeText: String? = row["vMode"]
                if let modeText, let mode = VerificationMode(rawValue: modeText) {
                    verification = VerificationRecord(snapshot: snapshot.id, at: Catalog.date(row["vAtMs"]), mode: mode,
                                                      passed: row["vPassed"], firstProblem: row["vProblem"])
                }
                older.append((snapshot, verification))
                if Selector.rejection(snapshot, verification, criteria) == nil { acceptable += 1 }
                if acceptable > fallbackLimit || older.count >= 10 * (fallbackLimit + 1) + 100 { break }
            }
            return Selector.decide(criteria: criteria, cutoff: cutoff, tooNew: tooNew, tooNewCount: tooNewCount,
                                   olderNewestFirst: older, notConsidered: total - matching, fallbackLimit: fallbackLimit)
        }
    }

    private static func rows(_ db: Database, _ sql: String, _ args: [DatabaseValueConvertible?]) throws -> [(CatalogSnapshot, Row)] {
        try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).compactMap { row in snapshot(row).map { ($0, row) } }
    }

    /// A snapshot row without its tags (selection filters tags in SQL; `snapshots()` adds them).
    static func snapshot(_ row: Row) -> CatalogSnapshot? {
        guard let id = SnapshotID(row["id"]), let kind = SnapshotKind(rawValue: row["kind"]) else { return nil }
        return CatalogSnapshot(
            id: id, kind: kind, source: row["source"], host: row["host"], tags: [], runID: row["runID"],
            startedAt: Catalog.date(row["startedAtMs"]), completedAt: Catalog.date(row["completedAtMs"]),
            bytesIn: row["bytesIn"], bytesStored: row["bytesStored"], bytesNew: row["bytesNew"],
            entryCount: row["entryCount"], warningCount: row["warningCount"])
    }
}
