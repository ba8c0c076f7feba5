import Foundation

/// An event's ID, the name of its file `events/<id>.json` (`event remove ID`, `--event ID`).
/// Same form as a snapshot ID: the event's UTC time and 8 hex characters,
/// `20240324T220000Z-1a2b3c4d`; in JSON it is that string.
public struct EventID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    /// Nil when `rawValue` is not an event ID.
    public init?(rawValue: String) {
        guard SnapshotID(rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    /// Nil when `text` is not an event ID.
    public init?(_ text: String) {
        self.init(rawValue: text)
    }

    /// A new ID for an event at `date`.
    public init(at date: Date) {
        rawValue = SnapshotID(startedAt: date).rawValue
    }

    public var description: String { rawValue }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let id = EventID(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an event ID: \(text)")
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
