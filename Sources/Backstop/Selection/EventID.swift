import Foundation

/// An event's ID, the name of its file `events/<id>.json` (`event remove ID`, `--event ID`).
/// Same form as a snapshot ID: the event's UTC time and 8 hex characters,
/// `20240324T220000Z-1a2b3c4d`; in JSON it is that string.
public struct EventID: TimestampedID {
    public static let noun = "event ID"
    public let rawValue: String

    public init(checked rawValue: String) { self.rawValue = rawValue }

    /// A new ID for an event at `date`.
    public init(at date: Date) { self = .new(at: date) }
}
