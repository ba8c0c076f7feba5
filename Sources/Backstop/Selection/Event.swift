import Foundation

/// A named point in time, such as the start of an upgrade: `events/<id>.json`.
public struct Event: Codable, Sendable, Equatable {
    /// Same form as a snapshot ID: the event's UTC time and 8 hex characters.
    public var id: String
    public var name: String
    public var at: Date
    public var note: String?

    public init(name: String, at: Date, note: String?) {
        id = SnapshotID(startedAt: at).rawValue
        self.name = name
        self.at = at
        self.note = note
    }
}

/// Errors about events.
public enum EventError: Error, CustomStringConvertible, ExitStatusProviding {
    case invalidName(String)
    case notFound(String)
    case noSuchEventName(String, known: [String])

    public var description: String {
        switch self {
        case let .invalidName(n):
            return "event name \"\(n)\" is not allowed: use letters, digits, '.', '_' and '-' (for example upgrade-11.4)"
        case let .notFound(id):
            return "no event has ID \(id); list them with `backstop event list`"
        case let .noSuchEventName(n, known):
            return "\"\(n)\" is neither a time nor an event name; known events: \(known.isEmpty ? "none" : known.joined(separator: ", ")). Add one with `backstop event add \(n) --at TIME`"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .invalidName: return .usage
        case .notFound, .noSuchEventName: return .noMatch
        }
    }
}

extension Repository {
    /// Records an event. Written atomically to `events/<id>.json`, then cataloged.
    @discardableResult
    public func addEvent(name: String, at: Date, note: String?) throws -> Event {
        let valid = !name.isEmpty && name.utf8.count <= 128 && name.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || $0 == "." || $0 == "_" || $0 == "-"
        }
        guard valid else { throw EventError.invalidName(name) }
        let event = Event(name: name, at: Repository.truncatedToMillis(at), note: note)
        let bytes = Array(try Timestamp.jsonEncoder().encode(event)) + [0x0A]
        try FileSystem.writeAtomically(bytes, to: eventsDirectory + "/" + event.id + ".json")
        try catalog.insert(event)
        return event
    }

    /// Every event, oldest first.
    public func events() throws -> [Event] {
        try catalog.events()
    }

    /// Removes an event by ID (or unique prefix of it).
    @discardableResult
    public func removeEvent(_ idOrPrefix: String) throws -> Event {
        let matches = try events().filter { $0.id == idOrPrefix || $0.id.hasPrefix(idOrPrefix) || $0.id.hasSuffix(idOrPrefix) }
        guard matches.count == 1, !idOrPrefix.isEmpty else { throw EventError.notFound(idOrPrefix) }
        let path = eventsDirectory + "/" + matches[0].id + ".json"
        if unlink(path) != 0 && errno != ENOENT { throw RepositoryError.io(path: path, operation: "remove", errno: errno) }
        try FileSystem.sync(eventsDirectory)
        try catalog.removeEvent(matches[0].id)
        return matches[0]
    }

    static func loadEvents(_ directory: String) -> [Event] {
        let decoder = Timestamp.jsonDecoder()
        return ((try? FileSystem.list(directory)) ?? []).filter { $0.hasSuffix(".json") }.compactMap { name in
            (try? FileSystem.readFile(directory + "/" + name)).flatMap { try? decoder.decode(Event.self, from: Data($0)) }
        }
    }
}
