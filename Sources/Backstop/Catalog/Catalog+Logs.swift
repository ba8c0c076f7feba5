import Foundation
import GRDB

/// Archived log segments (`logs/<source>/<object>.json`), mirrored for `logs list`, `logs check`
/// and point-in-time restores; rebuilt from a listing of `logs/<source>/` like everything else.
extension Catalog {
    static func createLogSegments(_ db: Database) throws {
        try db.create(table: "logSegment") { t in
            t.column("source", .text).notNull()
            t.column("object", .text).notNull()
            t.column("name", .text).notNull()
            t.column("firstEventMs", .integer)
            t.column("lastEventMs", .integer)
            t.column("record", .text).notNull()   // the segment's JSON record
            t.primaryKey(["source", "object"])
        }
    }

    /// The cataloged segments of `source`, by object name.
    func logSegments(source: String) throws -> [String: LogSegment] {
        try database.read { db in
            var result: [String: LogSegment] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT object, record FROM logSegment WHERE source = ?", arguments: [source]) {
                let text: String = row["record"]
                if let s = try? Timestamp.jsonDecoder().decode(LogSegment.self, from: Data(text.utf8)) { result[row["object"]] = s }
            }
            return result
        }
    }

    func insert(_ segment: LogSegment) throws {
        let text = String(decoding: try Timestamp.jsonEncoder().encode(segment), as: UTF8.self)
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO logSegment (source, object, name, firstEventMs, lastEventMs, record) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [segment.source, segment.objectName, segment.name, segment.firstEventAt.map(Catalog.millis),
                                       segment.lastEventAt.map(Catalog.millis), text])
        }
    }

    func removeLogSegments(source: String, objects: [String]) throws {
        guard !objects.isEmpty else { return }
        try database.write { db in
            for o in objects { try db.execute(sql: "DELETE FROM logSegment WHERE source = ? AND object = ?", arguments: [source, o]) }
        }
    }
}
