import Foundation

/// A named point in time, such as the start of an upgrade: `events/<id>.json`.
public struct Event: Codable, Sendable, Equatable {
    /// Same form as a snapshot ID: the event's UTC time and 8 hex characters.
    public var id: EventID
    public var name: String
    public var at: Date
    public var note: String?
    /// Encrypted repositories: the note as a base64 age file encrypted to the recipients (and
    /// `note` nil). Read with an identity, `note` holds it again and this is nil.
    public var sealedNote: String? = nil

    /// Whether the event has a note this process cannot read (no identity).
    public var noteIsSealed: Bool { note == nil && sealedNote != nil }

    public init(name: String, at: Date, note: String?) {
        id = EventID(at: at)
        self.name = name
        self.at = at
        self.note = note
    }
}

/// Errors about events.
public enum EventError: Error, CustomStringConvertible, ExitStatusProviding {
    case notFound(String)
    case noSuchEventName(String, known: [String])
    /// The name reads as a time, so `--before NAME` would never mean the event.
    case nameIsATime(String)
    case ambiguous(String, matches: [Event])

    public var description: String {
        switch self {
        case let .notFound(id):
            return "no event has ID \(id); list them with `backstop event list`"
        case let .noSuchEventName(n, known):
            return "\"\(n)\" is neither a time nor an event name; known events: \(known.isEmpty ? "none" : known.joined(separator: ", ")). Add one with `backstop event add \(n) --at TIME`"
        case let .nameIsATime(n):
            return "event name \"\(n)\" reads as a time, so --before \(n) would mean that time, never the event; choose a name such as upgrade-\(n) and give the time with --at"
        case let .ambiguous(prefix, matches):
            return "\"\(prefix)\" matches \(matches.count) events: "
                + matches.map { "\($0.id) \"\($0.name)\" at \(Timestamp.format($0.at))" }.joined(separator: "; ")
                + "; give more of the ID"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .nameIsATime, .ambiguous: return .usage
        case .notFound, .noSuchEventName: return .noMatch
        }
    }
}

extension Repository {
    /// Records an event. Written atomically to `events/<id>.json`, then cataloged.
    @discardableResult
    public func addEvent(name: String, at: Date, note: String?) throws -> Event {
        try Name.validate(name, kind: .event)
        if Self.readsAsTime(name) { throw EventError.nameIsATime(name) }
        let event = Event(name: name, at: Repository.truncatedToMillis(at), note: note)
        var stored = event
        if let encrypted = storage as? EncryptedBackend, let note {
            // The note is encrypted to the recipients (in events/ and in the catalog alike).
            stored.note = nil
            stored.sealedNote = try encrypted.sealValue(Array(note.utf8), toRecipientsOnly: true)
        }
        let bytes = Array(try Timestamp.jsonEncoder().encode(stored)) + [0x0A]
        try storage.put(RepositoryLayout.event(event.id.rawValue), bytes, mode: .replace)
        try catalog.insert(stored)
        return event
    }

    /// Every event, oldest first; on an encrypted repository, with their notes decrypted when
    /// this process holds an identity (else `sealedNote` set and `note` nil).
    public func events() throws -> [Event] {
        let all = try catalog.events()
        guard let encrypted = storage as? EncryptedBackend, encrypted.canDecrypt else { return all }
        return try all.map { e in
            guard let sealed = e.sealedNote,
                  let bytes = try encrypted.unsealValue(sealed, object: "the note of event \(e.id) (events/\(e.id).json in \(location))") else { return e }
            var open = e
            open.note = String(decoding: bytes, as: UTF8.self)
            open.sealedNote = nil
            return open
        }
    }

    /// Removes an event by ID (or unique prefix of it).
    @discardableResult
    public func removeEvent(_ idOrPrefix: String) throws -> Event {
        let matches = try events().filter { $0.id.rawValue == idOrPrefix || $0.id.rawValue.hasPrefix(idOrPrefix) || $0.id.rawValue.hasSuffix(idOrPrefix) }
        guard !idOrPrefix.isEmpty, !matches.isEmpty else { throw EventError.notFound(idOrPrefix) }
        if matches.count > 1 { throw EventError.ambiguous(idOrPrefix, matches: matches) }
        try storage.delete(RepositoryLayout.event(matches[0].id.rawValue))
        try catalog.removeEvent(matches[0].id.rawValue)
        return matches[0]
    }

    /// Whether `name` parses as a time (in UTC, or as a local time in any zone: a DST gap or
    /// fold is still a time).
    static func readsAsTime(_ name: String) -> Bool {
        do {
            _ = try TimeParser(timeZone: TimeZone(identifier: "UTC")!).parse(name)
            return true
        } catch let error as TimeParseError {
            if case .unrecognized = error { return false }
            return true
        } catch {
            return false
        }
    }

    /// Every event stored in `events/`; an object that cannot be read or decoded is left out.
    static func loadEvents(_ storage: StorageBackend) throws -> [Event] {
        let decoder = Timestamp.jsonDecoder()
        return try storage.children(of: RepositoryLayout.events).filter { $0.hasSuffix(".json") && StorageKey.isValidComponent($0) }.compactMap { name in
            (try? storage.read(RepositoryLayout.events.appending(name))).flatMap { try? decoder.decode(Event.self, from: Data($0)) }
        }
    }
}
