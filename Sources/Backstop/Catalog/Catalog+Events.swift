import Foundation
import GRDB

extension Catalog {
    public func insert(_ event: Event) throws {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO event (id, name, atMs, note) VALUES (?, ?, ?, ?)",
                           arguments: [event.id.rawValue, event.name, Catalog.millis(event.at), event.note])
        }
    }

    public func removeEvent(_ id: String) throws {
        try database.write { db in try db.execute(sql: "DELETE FROM event WHERE id = ?", arguments: [id]) }
    }

    /// Every event, oldest first.
    public func events() throws -> [Event] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event ORDER BY atMs, id").compactMap { row in
                guard let id = EventID(row["id"]) else { return nil }   // rows come from valid events only
                var e = Event(name: row["name"], at: Catalog.date(row["atMs"]), note: row["note"])
                e.id = id
                return e
            }
        }
    }

    /// Makes the event table agree with `events/`.
    func reconcileEvents(_ onDisk: [Event]) throws {
        let known = Set(try events().map(\.id))
        let present = Set(onDisk.map(\.id))
        guard known != present else { return }
        try database.write { db in
            try db.execute(sql: "DELETE FROM event")
            for e in onDisk {
                try db.execute(sql: "INSERT OR REPLACE INTO event (id, name, atMs, note) VALUES (?, ?, ?, ?)",
                               arguments: [e.id.rawValue, e.name, Catalog.millis(e.at), e.note])
            }
        }
    }
}
