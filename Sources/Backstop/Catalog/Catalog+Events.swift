import Foundation
import GRDB

extension Catalog {
    public func insert(_ event: Event) throws {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO event (id, name, atMs, note) VALUES (?, ?, ?, ?)",
                           arguments: [event.id.rawValue, event.name, Catalog.millis(event.at), Self.noteColumn(event)])
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
                let note: String? = row["note"]
                var e = Event(name: row["name"], at: Catalog.date(row["atMs"]), note: note)
                e.id = id
                if let note, note.hasPrefix(Self.sealedNotePrefix) {
                    e.note = nil
                    e.sealedNote = String(note.dropFirst(Self.sealedNotePrefix.count))
                }
                return e
            }
        }
    }

    /// The note column holds an encrypted note as this prefix and its base64 age file, so the
    /// catalog never holds a note in clear that `events/` holds encrypted.
    static let sealedNotePrefix = "\u{1}sealed:"

    static func noteColumn(_ e: Event) -> String? {
        e.sealedNote.map { sealedNotePrefix + $0 } ?? e.note
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
                               arguments: [e.id.rawValue, e.name, Catalog.millis(e.at), Self.noteColumn(e)])
            }
        }
    }
}
